"""Model and device loading: presets, YAML files, HF config.json files, and the errors bad input gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tstack
from tstack.errors import SpecError, UnsupportedModelError
from tstack.spec import SUPPORTED_FAMILIES, load_device, preset_names
from tstack.workload import Activation, ModelSpec, Norm, ResNetSpec


def test_every_preset_loads() -> None:
    names = preset_names()
    for required in (
        "bert-base",
        "bert-large",
        "bert-base-4heads",
        "gpt2",
        "gpt2-medium",
        "gpt2-large",
        "gpt2-xl",
        "llama-2-7b",
        "vit-base",
        "resnet50",
    ):
        assert required in names
    for name in names:
        spec = tstack.load_model(name)
        assert spec.name == name


def test_unknown_preset_suggests_nearest_names() -> None:
    with pytest.raises(SpecError, match=r"unknown model preset 'bert-bsae'; did you mean bert-base"):
        tstack.load_model("bert-bsae")


def test_heterogeneous_yaml(tmp_path: Path) -> None:
    path = tmp_path / "nas.yaml"
    path.write_text(
        "name: nas-cand\nfamily: decoder\nlayers: 3\nd_model: 672\nheads: [12, 6, 8]\nhead_dim: 64\n"
        "d_ff: [1280, 2560, 768]\nnorm_placement: pre\nactivation: gelu_tanh\n"
    )
    spec = tstack.load_model(path)
    assert isinstance(spec, ModelSpec)
    assert spec.heads == (12, 6, 8) and spec.d_ff == (1280, 2560, 768) and not spec.is_uniform
    assert spec.q_width(1) == 6 * 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nfamily: encoder\nlayers: 2\nd_model: 770\nheads: 12\nd_ff: 64\n",
            r"d_model 770 is not divisible by 12 heads",
        ),
        (
            "name: x\nfamily: encoder\nlayers: 2\nd_model: 768\nheads: [12, 6]\nd_ff: 64\n",
            r"set head_dim explicitly",
        ),
        (
            "name: x\nfamily: encoder\nlayers: 2\nd_model: 768\nheads: [12, 12, 12]\nd_ff: 64\n",
            r"heads lists 3 values for 2 layers",
        ),
        (
            "name: x\nfamily: encoder\nlayers: 0\nd_model: 768\nheads: 12\nd_ff: 64\n",
            r"layers: Input should be",
        ),
        (
            "name: x\nfamily: encoder\nlayers: 2\nd_model: 768\nheads: 12\nd_ff: 64\nwidth: 3\n",
            r"width: Extra inputs",
        ),
        (
            "name: x\nfamily: encoder\nlayers: 2\nd_model: 768\nheads: 12\nkv_heads: 5\nd_ff: 64\n",
            r"kv_heads must divide heads",
        ),
        ("- a\n- b\n", r"expected a mapping"),
        ("name: [unclosed\n", r"is not valid YAML"),
    ],
)
def test_bad_model_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        tstack.load_model(path)


def test_hf_config_json_file_and_folder(tmp_path: Path) -> None:
    cfg = {
        "model_type": "llama",
        "hidden_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 512,
        "vocab_size": 1000,
        "architectures": ["LlamaForCausalLM"],
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    for source in (tmp_path / "config.json", tmp_path):
        spec = tstack.load_model(source)
        assert isinstance(spec, ModelSpec)
        assert spec.kv_heads == (2, 2) and spec.norm is Norm.RMSNORM and spec.activation is Activation.SWIGLU
        assert spec.lm_head and not spec.tied_embeddings


def test_unsupported_family_names_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "t5", "d_model": 512}))
    with pytest.raises(UnsupportedModelError, match="model family 't5' is not supported; supported families: bert"):
        tstack.load_model(path)
    assert set(SUPPORTED_FAMILIES) >= {
        "bert",
        "roberta",
        "distilbert",
        "gpt2",
        "opt",
        "gpt_neox",
        "llama",
        "mistral",
        "vit",
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"is not valid JSON"),
        ("[1, 2]", r"must be a JSON object"),
        ('{"hidden_size": 8}', r"no 'model_type' field"),
        (
            '{"model_type": "bert", "hidden_size": 100, "num_attention_heads": 12}',
            r"not divisible by 12 heads",
        ),
    ],
)
def test_malformed_config_json(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(SpecError, match=message):
        tstack.load_model(path)


def test_missing_files() -> None:
    with pytest.raises(SpecError, match="does not exist"):
        tstack.load_model("/nonexistent/model.yaml")
    with pytest.raises(SpecError, match=r"folder without a config\.json"):
        tstack.load_model(Path(__file__).parent)


def test_resnet_preset_matches_torchvision_parameter_count() -> None:
    spec = tstack.load_model("resnet50")
    assert isinstance(spec, ResNetSpec)
    assert tstack.count_params(spec) == 25_557_032  # torchvision.models.resnet50 documentation


def test_devices_and_ridge_point() -> None:
    for name in ("a100", "h100", "h200", "xeon-gold-6242"):
        load_device(name)
    a100 = load_device("a100")
    assert a100.ridge_point(16) == pytest.approx(312e12 / 2039e9)
    with pytest.raises(SpecError, match="no peak for 4-bit operands"):
        a100.peak_at(4)
    with pytest.raises(SpecError, match="unknown device preset 'a10'; did you mean a100"):
        load_device("a10")
