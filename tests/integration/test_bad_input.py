"""Every bad input is one line: a table of bad or edge inputs across every command, each of which must end with exit
code 2, exactly one `error: ...` line on stderr, no traceback, and no file created or changed anywhere (issue 19).

Each case runs in-process (typer's CliRunner: the app's own error boundary, `_OneLineErrors`, is what prints the
line) in a fresh working folder; the input files it names are made once per module in a separate folder, and both
folders are compared before and after. A second test feeds names that climb out of a folder (`../../x` in a
config.json's `_name_or_path`, a hardware name with slashes) to every command that writes, and checks that nothing
is written outside the folder given."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from tstack.cli import app

runner = CliRunner()

_BERT = {
    "model_type": "bert",
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "vocab_size": 100,
    "max_position_embeddings": 64,
}
_MODEL_YAML = "name: tiny\nfamily: encoder\nlayers: 2\nd_model: 64\nheads: 4\nd_ff: 128\n"
_DEVICE_YAML = "name: dev\npeak_tera_ops_per_s: {8: 100}\nmem_bandwidth_gb_per_s: 1000\n"
_SPACE_YAML = "name: s\nlayers: [2]\nd_model: [64]\nheads: [4]\nd_ff: [128]\nvocab_size: 100\nseq_len: 32\n"


def _hardware_yaml(**changes: str) -> str:
    """The gemmini-baseline preset with top-level lines replaced (`clock_ghz=".inf"`)."""
    from importlib import resources

    text = (resources.files("tstack.presets") / "hardware" / "gemmini-baseline.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    for key, value in changes.items():
        lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in lines]
    return "\n".join(lines) + "\n"


def _make_inputs(d: Path) -> None:
    """The bad (and a few good) input files the cases name as {d}/..."""
    files: dict[str, str | bytes] = {
        "latin1.yaml": b"name: caf\xe9\nfamily: encoder\n",
        "latin1.json": b'{"model_type": "bert", "_name_or_path": "caf\xe9"}',
        "latin1.txt": b"Ceci est une phrase en fran\xe7ais avec assez de mots pour compter.\n",
        "latin1.journal": b"\xff\xfe\x00garbage\n",
        "truncated.yaml": "name: [a, b\nfamily: encoder\n",
        "truncated.json": '{"model_type": "bert", "hidden_size": ',
        "python-tag.yaml": "!!python/object/apply:os.system ['echo pwned']\n",
        "empty.yaml": "",
        # dimensions with many divisors: an exhaustive mapping search over a large space
        "composite.yaml": "name: composite\nfamily: encoder\nlayers: 1\nd_model: 55440\nheads: 1\nd_ff: 55440\n"
        "max_positions: 1048576\n",
        "empty.json": "",
        "list.yaml": "- 1\n- 2\n",
        "list.json": "[1, 2]",
        "scalar.yaml": "just a string\n",
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep.yaml": "[" * 20_000 + "]" * 20_000 + "\n",
        "nan.json": '{"model_type": "bert", "hidden_size": NaN}',
        # Hugging Face configs with wrong-typed or absurd fields
        "hf-type-list.json": json.dumps({**_BERT, "model_type": ["bert"]}),
        "hf-type-int.json": json.dumps({**_BERT, "model_type": 7}),
        "hf-type-unknown.json": json.dumps({**_BERT, "model_type": "t5"}),
        "hf-no-type.json": json.dumps({k: v for k, v in _BERT.items() if k != "model_type"}),
        "hf-archs-int.json": json.dumps({**_BERT, "model_type": "gpt2", "architectures": [1]}),
        "hf-archs-str.json": json.dumps({**_BERT, "model_type": "gpt2", "architectures": "GPT2LMHeadModel"}),
        "hf-hidden-str.json": json.dumps({**_BERT, "hidden_size": "wide"}),
        "hf-hidden-float.json": json.dumps({**_BERT, "hidden_size": 64.5}),
        "hf-hidden-list.json": json.dumps({**_BERT, "hidden_size": [64]}),
        "hf-hidden-bool.json": json.dumps({**_BERT, "hidden_size": {"a": 1}}),
        "hf-layers-huge.json": json.dumps({**_BERT, "num_hidden_layers": 10**9}),
        "hf-layers-neg.json": json.dumps({**_BERT, "num_hidden_layers": -1}),
        "hf-layers-2e63.json": json.dumps({**_BERT, "num_hidden_layers": 2**63}),
        "hf-heads-indivisible.json": json.dumps({**_BERT, "num_attention_heads": 5}),
        "hf-heads-zero.json": json.dumps({**_BERT, "num_attention_heads": 0}),
        "hf-act-list.json": json.dumps({**_BERT, "hidden_act": ["gelu"]}),
        "hf-act-unknown.json": json.dumps({**_BERT, "hidden_act": "mish"}),
        "hf-gpt2-embd-str.json": json.dumps({"model_type": "gpt2", "n_embd": "768"}),
        "hf-vocab-huge.json": json.dumps({**_BERT, "vocab_size": 10**12}),
        "hf-width-huge.json": json.dumps({**_BERT, "hidden_size": 2**40, "num_attention_heads": 1}),
        "hf-llama-act.json": json.dumps({"model_type": "llama", "hidden_act": "gelu"}),
        "hf-vit-patch.json": json.dumps({"model_type": "vit", "image_size": 224, "patch_size": 15}),
        # model YAML
        "model-layers-huge.yaml": _MODEL_YAML.replace("layers: 2", "layers: 1000000000"),
        "model-dmodel-zero.yaml": _MODEL_YAML.replace("d_model: 64", "d_model: 0"),
        "model-dmodel-str.yaml": _MODEL_YAML.replace("d_model: 64", "d_model: wide"),
        "model-unknown-field.yaml": _MODEL_YAML + "colour: blue\n",
        "model-missing-field.yaml": _MODEL_YAML.replace("d_ff: 128\n", ""),
        "model-heads-mismatch.yaml": _MODEL_YAML.replace("heads: 4", "heads: [4, 4, 4]"),
        "model-family.yaml": _MODEL_YAML.replace("family: encoder", "family: quantum"),
        "model-cnn-blocks.yaml": "name: r\nfamily: cnn\nblocks_per_stage: [3, 1000000000]\n",
        "model-cnn-image.yaml": "name: r\nfamily: cnn\nimage_px: 0\n",
        # hardware YAML
        "hw-clock-inf.yaml": _hardware_yaml(clock_ghz=".inf"),
        "hw-clock-nan.yaml": _hardware_yaml(clock_ghz=".nan"),
        "hw-clock-zero.yaml": _hardware_yaml(clock_ghz="0"),
        "hw-clock-str.yaml": _hardware_yaml(clock_ghz="fast"),
        "hw-unknown-field.yaml": _hardware_yaml() + "turbo: true\n",
        "hw-no-memory.yaml": _hardware_yaml(memory="[]"),
        "hw-name-list.yaml": _hardware_yaml(name="[a, b]"),
        # roofline device YAML
        "dev-bw-inf.yaml": _DEVICE_YAML.replace("1000", ".inf"),
        "dev-bw-neg.yaml": _DEVICE_YAML.replace("1000", "-5"),
        "dev-peak-inf.yaml": _DEVICE_YAML.replace("{8: 100}", "{8: .inf}"),
        "dev-unknown.yaml": _DEVICE_YAML + "colour: red\n",
        "dev-missing.yaml": "name: dev\n",
        "good-model.yaml": _MODEL_YAML,
        "good-device.yaml": _DEVICE_YAML,
        "good-space.yaml": _SPACE_YAML,
        "space-bad-field.yaml": _SPACE_YAML + "colour: red\n",
        "mapping-list.yaml": "- 1\n",
        "an-existing-file": "I am a file, not a folder\n",
        "sentences.txt": "This is one sentence with enough words in it. " * 3 + "\n",
        "constraints.yml.txt": "mapspace: {}\n",
    }
    for name, content in files.items():
        path = d / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    for folder, config, weights in (
        ("q-sparse", {"model_type": "bert"}, b"\x00\x01not safetensors"),
        ("q-types", {**_BERT, "num_hidden_layers": "two"}, b"\x00"),
        ("q-list", ["bert"], b"\x00"),
        ("q-gpt2", {"model_type": "gpt2"}, b"\x00"),
        ("q-latin1", None, b"\x00"),
    ):
        (d / folder).mkdir()
        if config is None:
            (d / folder / "config.json").write_bytes(b'{"model_type": "b\xe9rt"}')
        else:
            (d / folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
        (d / folder / "model.safetensors").write_bytes(weights)
    (d / "q-noweights").mkdir()
    (d / "q-noweights" / "config.json").write_text(json.dumps(_BERT), encoding="utf-8")
    (d / "hf-folder-empty").mkdir()


# (id, arguments with {d} for the inputs folder, a part of the expected message)
# fmt: off
CASES: list[tuple[str, list[str], str]] = [
    # -- usage errors: one line, not a framed panel
    ("no-such-command", ["analyse"], "No such command"),
    ("no-such-option", ["analyze", "--bogus"], "No such option"),
    ("batch-not-int", ["analyze", "--batch", "x"], "--batch"),
    ("simulate-no-model", ["simulate"], "Missing argument"),
    ("simulate-no-hw", ["simulate", "bert-base"], "Missing option '--hw'"),
    ("samples-not-int", ["mapspace", "--samples", "1e5"], "--samples"),
    ("seed-not-int", ["mapspace", "--seed", "abc"], "--seed"),
    ("nas-no-such", ["nas", "serch"], "No such command"),
    ("study-seq-float", ["study", "--seq", "12.5"], "--seq"),
    ("kernels-row-str", ["kernels", "--row", "wide"], "--row"),
    # -- analyze
    ("analyze-unknown-preset", ["analyze", "bert-bas"], "unknown model preset"),
    ("analyze-seq-zero", ["analyze", "--seq", "0"], "positive integer"),
    ("analyze-seq-neg", ["analyze", "--seq", "-5"], "positive integer"),
    ("analyze-seq-text", ["analyze", "--seq", "12x"], "--seq expects"),
    ("analyze-seq-empty", ["analyze", "--seq", ""], "--seq expects"),
    ("analyze-seq-comma", ["analyze", "--seq", "128,,256"], "--seq expects"),
    ("analyze-seq-1e12", ["analyze", "--seq", str(10**12)], "limit"),
    ("analyze-seq-2e63", ["analyze", "--seq", str(2**63)], "limit"),
    ("analyze-seq-float", ["analyze", "--seq", "128.5"], "--seq expects"),
    ("analyze-batch-zero", ["analyze", "--batch", "0"], "batch must be a positive integer"),
    ("analyze-batch-huge", ["analyze", "--batch", str(10**9)], "limit"),
    ("analyze-bits-zero", ["analyze", "--bits", "0"], "bits must be between"),
    ("analyze-bits-huge", ["analyze", "--bits", "1000"], "bits must be between"),
    ("analyze-phase", ["analyze", "--phase", "bogus"], "unknown phase"),
    ("analyze-cnn-phase", ["analyze", "resnet50", "--phase", "decode"], "CNN"),
    ("analyze-vit-seq", ["analyze", "vit-base", "--seq", "128"], "drop --seq"),
    ("analyze-convention", ["analyze", "--convention", "paper2023"], "unknown counting convention"),
    ("analyze-device-preset", ["analyze", "--device", "tpu"], "unknown device preset"),
    ("analyze-device-bits", ["analyze", "gpt2", "--bits", "4", "--device", "a100"], "no peak"),
    ("analyze-missing-yaml", ["analyze", "{d}/nope.yaml"], "does not exist"),
    ("analyze-missing-json", ["analyze", "{d}/nope.json"], "does not exist"),
    ("analyze-latin1-yaml", ["analyze", "{d}/latin1.yaml"], "not UTF-8"),
    ("analyze-latin1-json", ["analyze", "{d}/latin1.json"], "not UTF-8"),
    ("analyze-truncated-yaml", ["analyze", "{d}/truncated.yaml"], "not valid YAML"),
    ("analyze-truncated-json", ["analyze", "{d}/truncated.json"], "not valid JSON"),
    ("analyze-python-tag", ["analyze", "{d}/python-tag.yaml"], "not valid YAML"),
    ("analyze-empty-yaml", ["analyze", "{d}/empty.yaml"], "expected a mapping"),
    ("analyze-empty-json", ["analyze", "{d}/empty.json"], "not valid JSON"),
    ("analyze-list-yaml", ["analyze", "{d}/list.yaml"], "expected a mapping"),
    ("analyze-list-json", ["analyze", "{d}/list.json"], "JSON object"),
    ("analyze-scalar-yaml", ["analyze", "{d}/scalar.yaml"], "expected a mapping"),
    ("analyze-deep-json", ["analyze", "{d}/deep.json"], "nests too deeply"),
    ("analyze-deep-yaml", ["analyze", "{d}/deep.yaml"], "{d}/deep.yaml"),
    ("analyze-nan-json", ["analyze", "{d}/nan.json"], "not JSON"),
    ("analyze-folder-no-config", ["analyze", "{d}/hf-folder-empty"], "without a config.json"),
    ("analyze-hf-type-list", ["analyze", "{d}/hf-type-list.json"], "not supported"),
    ("analyze-hf-type-int", ["analyze", "{d}/hf-type-int.json"], "not supported"),
    ("analyze-hf-type-t5", ["analyze", "{d}/hf-type-unknown.json"], "supported families"),
    ("analyze-hf-no-type", ["analyze", "{d}/hf-no-type.json"], "no 'model_type'"),
    ("analyze-hf-archs-int", ["analyze", "{d}/hf-archs-int.json"], "architectures"),
    ("analyze-hf-archs-str", ["analyze", "{d}/hf-archs-str.json"], "architectures"),
    ("analyze-hf-hidden-str", ["analyze", "{d}/hf-hidden-str.json"], "d_model"),
    ("analyze-hf-hidden-float", ["analyze", "{d}/hf-hidden-float.json"], "d_model"),
    ("analyze-hf-hidden-list", ["analyze", "{d}/hf-hidden-list.json"], "d_model"),
    ("analyze-hf-hidden-dict", ["analyze", "{d}/hf-hidden-bool.json"], "d_model"),
    ("analyze-hf-layers-huge", ["analyze", "{d}/hf-layers-huge.json"], "layers"),
    ("analyze-hf-layers-neg", ["analyze", "{d}/hf-layers-neg.json"], "layers"),
    ("analyze-hf-layers-2e63", ["analyze", "{d}/hf-layers-2e63.json"], "layers"),
    ("analyze-hf-heads", ["analyze", "{d}/hf-heads-indivisible.json"], "not divisible"),
    ("analyze-hf-heads-zero", ["analyze", "{d}/hf-heads-zero.json"], "heads"),
    ("analyze-hf-act-list", ["analyze", "{d}/hf-act-list.json"], "activation"),
    ("analyze-hf-act-unknown", ["analyze", "{d}/hf-act-unknown.json"], "activation"),
    ("analyze-hf-vocab-huge", ["analyze", "{d}/hf-vocab-huge.json"], "vocab_size"),
    ("analyze-hf-width-huge", ["analyze", "{d}/hf-width-huge.json"], "d_model"),
    ("analyze-hf-llama-act", ["analyze", "{d}/hf-llama-act.json"], "not supported"),
    ("analyze-hf-vit-patch", ["analyze", "{d}/hf-vit-patch.json"], "patch_px"),
    ("analyze-model-layers-huge", ["analyze", "{d}/model-layers-huge.yaml"], "layers"),
    ("analyze-model-dmodel-zero", ["analyze", "{d}/model-dmodel-zero.yaml"], "d_model"),
    ("analyze-model-dmodel-str", ["analyze", "{d}/model-dmodel-str.yaml"], "d_model"),
    ("analyze-model-unknown", ["analyze", "{d}/model-unknown-field.yaml"], "colour"),
    ("analyze-model-missing", ["analyze", "{d}/model-missing-field.yaml"], "d_ff"),
    ("analyze-model-heads", ["analyze", "{d}/model-heads-mismatch.yaml"], "heads lists 3 values"),
    ("analyze-model-family", ["analyze", "{d}/model-family.yaml"], "family"),
    ("analyze-cnn-blocks", ["analyze", "{d}/model-cnn-blocks.yaml"], "blocks_per_stage"),
    ("analyze-cnn-image", ["analyze", "{d}/model-cnn-image.yaml"], "image_px"),
    ("analyze-device-latin1", ["analyze", "--device", "{d}/latin1.yaml"], "not UTF-8"),
    ("analyze-device-truncated", ["analyze", "--device", "{d}/truncated.yaml"], "not valid YAML"),
    ("analyze-device-python-tag", ["analyze", "--device", "{d}/python-tag.yaml"], "not valid YAML"),
    ("analyze-device-missing", ["analyze", "--device", "{d}/nope.yaml"], "does not exist"),
    ("analyze-device-folder", ["analyze", "--device", "{d}/hf-folder-empty.yaml"], "does not exist"),
    ("analyze-device-bw-inf", ["analyze", "--device", "{d}/dev-bw-inf.yaml"], "finite"),
    ("analyze-device-bw-neg", ["analyze", "--device", "{d}/dev-bw-neg.yaml"], "greater than 0"),
    ("analyze-device-peak-inf", ["analyze", "--device", "{d}/dev-peak-inf.yaml"], "finite"),
    ("analyze-device-unknown", ["analyze", "--device", "{d}/dev-unknown.yaml"], "colour"),
    ("analyze-device-missing-field", ["analyze", "--device", "{d}/dev-missing.yaml"], "Field required"),
    ("analyze-device-list", ["analyze", "--device", "{d}/list.yaml"], "mapping of device fields"),
    ("analyze-plot-file", ["analyze", "--plot", "{d}/an-existing-file"], "existing file"),
    ("analyze-plot-under-file", ["analyze", "--plot", "{d}/an-existing-file/sub"], "is a file"),
    ("analyze-plot-proc", ["analyze", "--plot", "/proc/tstack-plots"], "system folder"),
    ("analyze-plot-sys", ["analyze", "--plot", "/sys/kernel/tstack"], "system folder"),
    # -- simulate
    ("simulate-unknown-hw", ["simulate", "bert-base", "--hw", "gemini"], "unknown hardware preset"),
    ("simulate-hw-missing", ["simulate", "bert-base", "--hw", "{d}/nope.yaml"], "does not exist"),
    ("simulate-hw-latin1", ["simulate", "bert-base", "--hw", "{d}/latin1.yaml"], "not UTF-8"),
    ("simulate-hw-truncated", ["simulate", "bert-base", "--hw", "{d}/truncated.yaml"], "not valid YAML"),
    ("simulate-hw-python-tag", ["simulate", "bert-base", "--hw", "{d}/python-tag.yaml"], "not valid YAML"),
    ("simulate-hw-empty", ["simulate", "bert-base", "--hw", "{d}/empty.yaml"], "mapping of hardware fields"),
    ("simulate-hw-clock-inf", ["simulate", "bert-base", "--hw", "{d}/hw-clock-inf.yaml"], "clock_ghz"),
    ("simulate-hw-clock-nan", ["simulate", "bert-base", "--hw", "{d}/hw-clock-nan.yaml"], "clock_ghz"),
    ("simulate-hw-clock-zero", ["simulate", "bert-base", "--hw", "{d}/hw-clock-zero.yaml"], "clock_ghz"),
    ("simulate-hw-clock-str", ["simulate", "bert-base", "--hw", "{d}/hw-clock-str.yaml"], "clock_ghz"),
    ("simulate-hw-unknown", ["simulate", "bert-base", "--hw", "{d}/hw-unknown-field.yaml"], "turbo"),
    ("simulate-hw-no-memory", ["simulate", "bert-base", "--hw", "{d}/hw-no-memory.yaml"], "memory"),
    ("simulate-hw-name-list", ["simulate", "bert-base", "--hw", "{d}/hw-name-list.yaml"], "name"),
    ("simulate-seq-zero", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--seq", "0"], "positive"),
    ("simulate-seq-1e12", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--seq", str(10**12)], "limit"),
    ("simulate-seq-2e63", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--seq", str(2**63)], "limit"),
    ("simulate-batch-neg", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--batch", "-1"], "batch"),
    ("simulate-phase", ["simulate", "gpt2", "--hw", "gemmini-baseline", "--phase", "train"], "unknown phase"),
    ("simulate-mapper", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--mapper", "magic"], "mapper"),
    ("simulate-fused-transformer", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--fused"], "CNN"),
    ("simulate-model-latin1", ["simulate", "{d}/latin1.json", "--hw", "gemmini-baseline"], "not UTF-8"),
    ("simulate-plot-file", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--plot", "{d}/an-existing-file"],
     "existing file"),
    ("simulate-plot-proc", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--plot", "/proc/x"], "system"),
    # -- compare
    ("compare-empty-hw", ["compare", "bert-base", "--hw", ""], "at least one design"),
    ("compare-commas-hw", ["compare", "bert-base", "--hw", ",,"], "at least one design"),
    ("compare-unknown-hw", ["compare", "bert-base", "--hw", "gemmini-baseline,nope"], "unknown hardware"),
    ("compare-hw-latin1", ["compare", "bert-base", "--hw", "{d}/latin1.yaml"], "not UTF-8"),
    ("compare-seq-huge", ["compare", "bert-base", "--hw", "gemmini-baseline", "--seq", str(10**12)], "limit"),
    ("compare-plot-file", ["compare", "bert-base", "--hw", "gemmini-baseline", "--plot", "{d}/an-existing-file"],
     "existing file"),
    ("compare-model-missing", ["compare", "{d}/nope.yaml", "--hw", "gemmini-baseline"], "does not exist"),
    # -- sweep
    ("sweep-no-set", ["sweep", "bert-base", "--hw", "gemmini-baseline"], "--set"),
    ("sweep-no-equals", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "scratchpad"], "NAME=V1"),
    ("sweep-unknown-level", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "l9=64K"], "no memory level"),
    ("sweep-bad-size", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "scratchpad=lots"], "not a size"),
    ("sweep-zero", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "scratchpad=0"], "positive"),
    ("sweep-empty-values", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "scratchpad="], "positive"),
    ("sweep-duplicate-key", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "scratchpad=64K",
                             "--set", "scratchpad=128K"], "given twice"),
    ("sweep-duplicate-value", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "pe=8,8"], "twice"),
    ("sweep-pe-huge", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "pe=1000000"], "limit"),
    ("sweep-size-huge", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "scratchpad=9999999T"], "limit"),
    ("sweep-pe-text", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "pe=big"], "--set pe"),
    ("sweep-plot-one-axis", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "pe=8", "--plot", "out"],
     "exactly two"),
    ("sweep-plot-file", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "pe=8", "--set",
                         "scratchpad=64K", "--plot", "{d}/an-existing-file"], "existing file"),
    ("sweep-hw-latin1", ["sweep", "bert-base", "--hw", "{d}/latin1.yaml", "--set", "pe=8"], "not UTF-8"),
    # -- map
    ("map-export-no-op", ["map", "bert-base", "--hw", "gemmini-baseline", "--export", "x.yaml"], "--op"),
    ("map-mapping-no-op", ["map", "bert-base", "--hw", "gemmini-baseline", "--mapping", "{d}/list.yaml"], "--op"),
    ("map-unknown-op", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer99.ffn.up"], "no matmul"),
    ("map-mapping-missing", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up",
                             "--mapping", "{d}/nope.yaml"], "does not exist"),
    ("map-mapping-latin1", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up",
                            "--mapping", "{d}/latin1.yaml"], "not UTF-8"),
    ("map-mapping-truncated", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up",
                               "--mapping", "{d}/truncated.yaml"], "not valid YAML"),
    ("map-mapping-list", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up",
                          "--mapping", "{d}/mapping-list.yaml"], "mapping"),
    ("map-export-folder", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up",
                           "--export", "{d}/hf-folder-empty"], "is a folder"),
    ("map-export-proc", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up",
                         "--export", "/proc/tstack.yaml"], "system path"),
    ("map-export-under-file", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up",
                               "--export", "{d}/an-existing-file/x.yaml"], "existing file"),
    ("map-seq-huge", ["map", "bert-base", "--hw", "gemmini-baseline", "--seq", str(2**63)], "limit"),
    ("map-hw-clock-inf", ["map", "bert-base", "--hw", "{d}/hw-clock-inf.yaml"], "clock_ghz"),
    # -- mapspace
    ("mapspace-seed-neg", ["mapspace", "--seed", "-1", "--samples", "10"], "--seed"),
    ("mapspace-seed-huge", ["mapspace", "--seed", str(2**64), "--samples", "10"], "--seed"),
    ("mapspace-samples-zero", ["mapspace", "--samples", "0"], "--samples"),
    ("mapspace-samples-neg", ["mapspace", "--samples", "-3"], "--samples"),
    ("mapspace-samples-huge", ["mapspace", "--samples", str(10**15)], "--samples"),
    ("mapspace-ops-empty", ["mapspace", "--ops", "", "--samples", "10"], "--ops expects"),
    ("mapspace-ops-commas", ["mapspace", "--ops", ",", "--samples", "10"], "--ops expects"),
    ("mapspace-ops-unknown", ["mapspace", "--ops", "bert-base-qkv", "--samples", "10"], "unknown mapspace op"),
    ("mapspace-semantics", ["mapspace", "--semantics", "exact", "--samples", "10"], "unknown semantics"),
    ("mapspace-sampler", ["mapspace", "--sampler", "sobol", "--samples", "10"], "unknown sampler"),
    ("mapspace-sampler-tstack", ["mapspace", "--sampler", "timeloop-ids", "--samples", "10"], "has none"),
    ("mapspace-export-tstack", ["mapspace", "--export", "out", "--samples", "10"], "--export writes"),
    ("mapspace-export-file", ["mapspace", "--semantics", "nest", "--export", "{d}/an-existing-file",
                              "--samples", "10"], "existing file"),
    ("mapspace-plot-file", ["mapspace", "--plot", "{d}/an-existing-file", "--samples", "10"], "existing file"),
    ("mapspace-plot-proc", ["mapspace", "--plot", "/proc/self/x", "--samples", "10"], "system"),
    ("mapspace-constraints-unknown", ["mapspace", "--constraints", "nope", "--samples", "10"], "unknown"),
    ("mapspace-constraints-missing", ["mapspace", "--constraints", "{d}/nope.yaml", "--samples", "10"],
     "does not exist"),
    ("mapspace-constraints-latin1", ["mapspace", "--constraints", "{d}/latin1.yaml", "--samples", "10"],
     "not UTF-8"),
    ("mapspace-constraints-truncated", ["mapspace", "--constraints", "{d}/truncated.yaml", "--samples", "10"],
     "not valid YAML"),
    ("mapspace-constraints-tag", ["mapspace", "--constraints", "{d}/python-tag.yaml", "--samples", "10"],
     "not valid YAML"),
    ("mapspace-constraints-list", ["mapspace", "--constraints", "{d}/list.yaml", "--samples", "10"], "list.yaml"),
    ("mapspace-constraints-semantics", ["mapspace", "--constraints", "gemmini", "--semantics", "nest",
                                        "--samples", "10"], "replaces --semantics"),
    ("mapspace-arch-tstack", ["mapspace", "--timeloop-arch", "gemmini", "--samples", "10"], "prices nests"),
    ("mapspace-arch-latin1", ["mapspace", "--semantics", "nest", "--timeloop-arch", "{d}/latin1.yaml",
                              "--samples", "10"], "not UTF-8"),
    ("mapspace-arch-truncated", ["mapspace", "--semantics", "nest", "--timeloop-arch", "{d}/truncated.yaml",
                                 "--samples", "10"], "not valid YAML"),
    ("mapspace-arch-unknown", ["mapspace", "--semantics", "nest", "--timeloop-arch", "tpu", "--samples", "10"],
     "unknown"),
    ("mapspace-hw-latin1", ["mapspace", "--hw", "{d}/latin1.yaml", "--samples", "10"], "not UTF-8"),
    ("mapspace-hw-clock-inf", ["mapspace", "--hw", "{d}/hw-clock-inf.yaml", "--samples", "10"], "clock_ghz"),
    # -- fusion
    ("fusion-cnn", ["fusion", "resnet50"], "CNN"),
    ("fusion-seq-empty", ["fusion", "--seq", ""], "--seq expects"),
    ("fusion-seq-huge", ["fusion", "--seq", str(10**12)], "limit"),
    ("fusion-acc-bad", ["fusion", "--accumulator", "big"], "not a size"),
    ("fusion-acc-empty", ["fusion", "--accumulator", ""], "positive"),
    ("fusion-spad-zero", ["fusion", "--scratchpad", "0"], "positive"),
    ("fusion-hw-latin1", ["fusion", "--hw", "{d}/latin1.yaml"], "not UTF-8"),
    ("fusion-model-missing", ["fusion", "{d}/nope.json"], "does not exist"),
    # -- list commands take no input but --json
    ("models-extra-arg", ["models", "bert-base"], "unexpected extra argument"),
    ("devices-extra-arg", ["devices", "a100"], "unexpected extra argument"),
    ("hardware-extra-arg", ["hardware", "--all"], "No such option"),
    # -- kernels
    ("kernels-unknown", ["kernels", "--kernel", "tanh"], "tanh"),
    ("kernels-empty", ["kernels", "--kernel", ""], "--kernel expects"),
    ("kernels-variant", ["kernels", "--variant", "fp8"], "unknown --variant"),
    ("kernels-variant-empty", ["kernels", "--variant", ","], "--variant expects"),
    ("kernels-bits-text", ["kernels", "--bits", "eight"], "--bits expects"),
    ("kernels-bits-low", ["kernels", "--bits", "2"], "bits"),
    ("kernels-row-zero", ["kernels", "--row", "0"], "--row"),
    ("kernels-row-huge", ["kernels", "--row", str(10**12)], "--row"),
    ("kernels-plot-file", ["kernels", "--plot", "{d}/an-existing-file"], "existing file"),
    ("kernels-plot-proc", ["kernels", "--plot", "/proc/k"], "system"),
    # -- quantize
    ("quantize-no-calib", ["quantize", "{d}/q-sparse"], "Missing option '--calib'"),
    ("quantize-not-folder", ["quantize", "{d}/nope", "--calib", "{d}/sentences.txt"], "not a folder"),
    ("quantize-calib-missing", ["quantize", "{d}/q-sparse", "--calib", "{d}/nope.txt"], "does not exist"),
    ("quantize-calib-latin1", ["quantize", "{d}/q-sparse", "--calib", "{d}/latin1.txt"], "not UTF-8"),
    ("quantize-calib-folder", ["quantize", "{d}/q-sparse", "--calib", "{d}/hf-folder-empty"], "folder"),
    ("quantize-calib-few", ["quantize", "{d}/q-sparse", "--calib", "{d}/sentences.txt"], "too few"),
    ("quantize-eval-latin1", ["quantize", "{d}/q-sparse", "--calib", "{d}/sentences.txt", "--n-calib", "1",
                              "--eval", "{d}/latin1.txt"], "not UTF-8"),
    ("quantize-n-calib-zero", ["quantize", "{d}/q-sparse", "--calib", "{d}/sentences.txt", "--n-calib", "0"],
     "--n-calib"),
    ("quantize-sparse-corrupt", ["quantize", "{d}/q-sparse", "--calib", "{d}/sentences.txt", "--n-calib", "1"],
     "model.safetensors"),
    # one HF config parser (spec) for every command since 7016a31: it names the field in tstack's words
    ("quantize-config-types", ["quantize", "{d}/q-types", "--calib", "{d}/sentences.txt", "--n-calib", "1"],
     "layers: Input should be a valid integer"),
    ("quantize-config-list", ["quantize", "{d}/q-list", "--calib", "{d}/sentences.txt", "--n-calib", "1"],
     "JSON object"),
    ("quantize-config-gpt2", ["quantize", "{d}/q-gpt2", "--calib", "{d}/sentences.txt", "--n-calib", "1"],
     "BERT-family"),
    ("quantize-config-latin1", ["quantize", "{d}/q-latin1", "--calib", "{d}/sentences.txt", "--n-calib", "1"],
     "not UTF-8"),
    ("quantize-no-weights", ["quantize", "{d}/q-noweights", "--calib", "{d}/sentences.txt", "--n-calib", "1"],
     "model.safetensors"),
    # -- profile and calibrate (refused before torch measures anything)
    ("profile-unknown", ["profile", "bert-bas"], "unknown model preset"),
    ("profile-cnn", ["profile", "resnet50"], "not a Transformer"),
    ("profile-seq-text", ["profile", "bert-base", "--seq", "long"], "--seq expects"),
    ("profile-repeats-zero", ["profile", "bert-base", "--repeats", "0"], "--repeats"),
    ("profile-rounds-zero", ["profile", "bert-base", "--rounds", "0"], "--rounds"),
    ("profile-warmup-neg", ["profile", "bert-base", "--warmup", "-1"], "--warmup"),
    ("profile-threads-zero", ["profile", "bert-base", "--threads", "0"], "--threads"),
    ("profile-phase", ["profile", "bert-base", "--phase", "bogus"], "unknown phase"),
    ("profile-plot-file", ["profile", "bert-base", "--plot", "{d}/an-existing-file"], "existing file"),
    ("profile-model-latin1", ["profile", "{d}/latin1.yaml"], "not UTF-8"),
    ("calibrate-repeats-zero", ["calibrate", "--repeats", "0"], "--repeats"),
    ("calibrate-threads-neg", ["calibrate", "--threads", "-2"], "--threads"),
    ("calibrate-out-suffix", ["calibrate", "--out", "device.txt"], ".yaml"),
    ("calibrate-out-folder", ["calibrate", "--out", "{d}/hf-folder-empty"], "is a folder"),
    ("calibrate-out-proc", ["calibrate", "--out", "/proc/dev.yaml"], "system path"),
    ("calibrate-out-under-file", ["calibrate", "--out", "{d}/an-existing-file/dev.yaml"], "existing file"),
    # -- study (refused before any experiment runs)
    ("study-quick-full", ["study", "--quick", "--full"], "exclude each other"),
    ("study-only-empty", ["study", "--only", ""], "--only expects"),
    ("study-only-commas", ["study", "--only", ",,"], "--only expects"),
    ("study-only-unknown", ["study", "--only", "wrkload"], "unknown experiment"),
    ("study-threads-zero", ["study", "--threads", "0"], "--threads"),
    ("study-seed-neg", ["study", "--seed", "-1"], "--seed"),
    ("study-seq-zero", ["study", "--seq", "0"], "--seq"),
    ("study-seq-huge", ["study", "--seq", str(10**12)], "--seq"),
    ("study-model-unknown", ["study", "--model", "bert-bas"], "unknown model preset"),
    ("study-model-latin1", ["study", "--model", "{d}/latin1.json"], "not UTF-8"),
    ("study-hw-unknown", ["study", "--hw-target", "gemini"], "unknown hardware preset"),
    ("study-hw-clock-inf", ["study", "--hw-baseline", "{d}/hw-clock-inf.yaml"], "clock_ghz"),
    ("study-out-file", ["study", "--out", "{d}/an-existing-file"], "existing file"),
    ("study-out-proc", ["study", "--out", "/proc/study"], "system folder"),
    # -- nas
    ("nas-train-space-unknown", ["nas", "train", "--space", "huge"], "unknown search space"),
    ("nas-train-space-latin1", ["nas", "train", "--space", "{d}/latin1.yaml"], "not UTF-8"),
    ("nas-train-space-truncated", ["nas", "train", "--space", "{d}/truncated.yaml"], "not valid YAML"),
    ("nas-train-space-tag", ["nas", "train", "--space", "{d}/python-tag.yaml"], "not valid YAML"),
    ("nas-train-space-list", ["nas", "train", "--space", "{d}/list.yaml"], "mapping"),
    ("nas-train-space-field", ["nas", "train", "--space", "{d}/space-bad-field.yaml"], "colour"),
    ("nas-train-corpus-missing", ["nas", "train", "--space", "{d}/good-space.yaml", "--corpus", "{d}/nope.txt"],
     "nope.txt"),
    ("nas-train-corpus-latin1", ["nas", "train", "--space", "{d}/good-space.yaml", "--corpus", "{d}/latin1.txt"],
     "not UTF-8"),
    ("nas-train-threads", ["nas", "train", "--threads", "0"], "--threads"),
    ("nas-train-steps", ["nas", "train", "--steps", "0"], "--steps"),
    ("nas-train-out-file", ["nas", "train", "--out", "{d}/an-existing-file"], "existing file"),
    ("nas-train-out-proc", ["nas", "train", "--out", "/proc/nas"], "system folder"),
    ("codesign-strategy", ["codesign", "--strategy", "bogus"], "--strategy 'bogus' is not one of"),
    ("codesign-metric", ["codesign", "--metric", "x"], "--metric 'x' is not one of"),
    ("codesign-seed", ["codesign", "--seed", "-1"], "--seed"),
    ("codesign-plot-empty", ["codesign", "--plot", ""], "--plot is empty"),
    ("codesign-workers", ["codesign", "--workers", "0"], "--workers must be at least 1"),
    ("codesign-no-design-fits", ["codesign", "--area-budget", "0.01", "--evaluations", "4"], "no design meets"),
    ("codesign-no-shape-fits", ["codesign", "--perplexity-limit", "1", "--evaluations", "4"], "no shape meets"),
    ("codesign-space-missing", ["codesign", "--hardware-space", "{d}/nope.yaml"], "does not exist"),
    ("codesign-shape-space", ["codesign", "--space", "nope"], "unknown search space 'nope'"),
    ("codesign-evaluations", ["codesign", "--evaluations", "0"], "at least 2 evaluations"),
    ("codesign-batch", ["codesign", "--batch", "0"], "batch must be at least 1"),
    ("codesign-energies", ["codesign", "--energies", "x"], "--energies 'x' is not one of"),
    ("codesign-sampler", ["codesign", "--sampler", "x"], "--sampler 'x' is not one of"),
    ("codesign-perplexity", ["codesign", "--perplexity", "oracle"], "--perplexity 'oracle' is not one of"),
    ("codesign-supernet-none", ["codesign", "--perplexity", "supernet"], "--perplexity supernet needs --supernet"),
    ("codesign-supernet-missing", ["codesign", "--perplexity", "supernet", "--supernet", "{d}/nope.pt"],
     "does not exist"),
    ("codesign-supernet-garbage", ["codesign", "--perplexity", "supernet", "--supernet", "{d}/an-existing-file"],
     "not a readable checkpoint"),
    ("codesign-supernet-with-proxy", ["codesign", "--supernet", "{d}/nope.pt"], "--supernet is read only with"),
    ("codesign-limit-and-factor", ["codesign", "--perplexity-limit", "30", "--perplexity-factor", "1.1"], "not both"),
    ("codesign-factor-negative", ["codesign", "--perplexity-factor", "-1"], "--perplexity-factor must be"),
    ("codesign-rounds-zero", ["codesign", "--strategy", "alternating", "--rounds", "0"], "at least 1 round"),
    ("codesign-rounds-budget", ["codesign", "--strategy", "alternating", "--rounds", "5", "--evaluations", "6"],
     "need at least 10 evaluations"),
    ("kernels-plot-empty", ["kernels", "--plot", ""], "--plot is empty"),
    ("nas-search-seed", ["nas", "search", "--seed", "-1"], "--seed"),
    ("nas-search-threads", ["nas", "search", "--threads", "0"], "--threads"),
    ("nas-search-objective", ["nas", "search", "--objective", "oracle"], "unknown --objective"),
    ("nas-search-no-checkpoint", ["nas", "search", "--checkpoint", "{d}/nope.pt"], "nope.pt"),
    ("nas-search-algorithm", ["nas", "search", "--objective", "proxy", "--algorithm", "annealing",
                              "--storage", "memory"], "annealing"),
    ("nas-search-population", ["nas", "search", "--objective", "proxy", "--population", "0",
                               "--storage", "memory"], "population"),
    ("nas-search-mutation", ["nas", "search", "--objective", "proxy", "--mutation-prob", "1.5",
                             "--storage", "memory"], "mutation"),
    ("nas-search-space-latin1", ["nas", "search", "--objective", "proxy", "--space", "{d}/latin1.yaml",
                                 "--storage", "memory"], "not UTF-8"),
    ("nas-search-storage-scheme", ["nas", "search", "--objective", "proxy", "--storage", "redis://x"],
     "unsupported storage"),
    ("nas-search-storage-folder", ["nas", "search", "--objective", "proxy", "--storage", "{d}/hf-folder-empty"],
     "directory"),
    ("nas-search-storage-latin1", ["nas", "search", "--objective", "proxy", "--storage", "{d}/latin1.journal"],
     "not an Optuna journal"),
    ("nas-search-hardware", ["nas", "search", "--objective", "proxy", "--hardware", "gemini",
                             "--storage", "memory"], "unknown hardware preset"),
    ("nas-report-typo", ["nas", "report", "--storage", "typo.journal"], "does not exist"),
    ("nas-report-typo-sqlite", ["nas", "report", "--storage", "sqlite:///typo.db"], "no such database"),
    ("nas-report-latin1", ["nas", "report", "--storage", "{d}/latin1.journal"], "not an Optuna journal"),
    ("nas-report-folder", ["nas", "report", "--storage", "{d}/hf-folder-empty"], "directory"),
    ("nas-report-plot-file", ["nas", "report", "--storage", "typo.journal", "--plot", "{d}/an-existing-file"],
     "existing file"),
    ("nas-report-memory", ["nas", "report", "--storage", "memory"], "no study named"),
    # an empty output path would mean the current folder
    ("analyze-plot-empty", ["analyze", "--plot", ""], "--plot is empty"),
    ("analyze-plot-blank", ["analyze", "--plot", "  "], "--plot is empty"),
    ("simulate-plot-empty", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--plot", ""], "--plot is empty"),
    ("compare-plot-empty", ["compare", "bert-base", "--hw", "gemmini-baseline", "--plot", ""], "--plot is empty"),
    ("sweep-plot-empty", ["sweep", "bert-base", "--hw", "gemmini-baseline", "--set", "pe=8", "--set",
                          "scratchpad=64K", "--plot", ""], "--plot is empty"),
    ("map-export-empty", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up", "--export", ""],
     "--export is empty"),
    ("mapspace-plot-empty", ["mapspace", "--samples", "10", "--plot", ""], "--plot is empty"),
    ("mapspace-export-empty", ["mapspace", "--samples", "10", "--semantics", "nest", "--export", ""],
     "--export is empty"),
    ("profile-plot-empty", ["profile", "bert-base", "--plot", ""], "--plot is empty"),
    ("calibrate-out-empty", ["calibrate", "--out", ""], "--out is empty"),
    ("study-out-empty", ["study", "--out", ""], "--out is empty"),
    ("nas-train-out-empty", ["nas", "train", "--out", ""], "--out is empty"),
    ("nas-report-plot-empty", ["nas", "report", "--plot", ""], "--plot is empty"),
    # predicted to run past the time limit without --allow-slow (issue 19's `simulate llama-2-70b --seq 32768`)
    ("simulate-slow", ["simulate", "llama-2-70b", "--hw", "gemmini-baseline", "--seq", "32768"], "--allow-slow"),
    ("simulate-slow-cosa", ["simulate", "llama-2-7b", "--hw", "gemmini-baseline", "--seq", "4096", "--mapper",
                            "cosa"], "--allow-slow"),
    ("simulate-slow-plot", ["simulate", "llama-2-70b", "--hw", "gemmini-baseline", "--seq", "32768", "--plot",
                            "out"], "--allow-slow"),
    ("compare-slow", ["compare", "llama-2-70b", "--hw", "gemmini-baseline,gemmini-ibert,gemmini-baseline", "--seq",
                      "16384"], "--allow-slow"),
    ("sweep-slow", ["sweep", "llama-2-70b", "--hw", "gemmini-baseline", "--seq", "16384", "--set",
                    "accumulator=64K,128K,256K"], "--allow-slow"),
    ("map-slow", ["map", "{d}/composite.yaml", "--hw", "gemmini-baseline", "--seq", "720720"], "--allow-slow"),
    ("mapspace-slow", ["mapspace", "--samples", str(10**8)], "--allow-slow"),
    ("mapspace-slow-nest", ["mapspace", "--samples", str(10**7), "--semantics", "nest"], "--allow-slow"),
    ("analyze-slow", ["analyze", "llama-2-70b", "--seq", ",".join(["1048576"] * 8)], "--allow-slow"),
    # names too long for the file system (found by tests/integration/test_cli_fuzz.py)
    ("analyze-name-too-long", ["analyze", "x" * 300], "longer than the 255 a file name may have"),
    ("map-mapping-too-long", ["map", "bert-base", "--hw", "gemmini-baseline", "--op", "layer0.ffn.up", "--mapping",
                              "x" * 300], "longer than the 255 a file name may have"),
    ("nas-report-storage-too-long", ["nas", "report", "--storage", "x" * 300], "File name too long"),
    ("simulate-plot-too-long", ["simulate", "bert-base", "--hw", "gemmini-baseline", "--plot", "x" * 300],
     "longer than the 255 a file name may have"),
]
# fmt: on


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    _make_inputs(d)
    return d


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder below `folders` with its size and modification time."""
    seen = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                st = (Path(root) / name).stat()
                seen[str(Path(root) / name)] = (st.st_size, st.st_mtime_ns)
    return seen


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd


def test_at_least_150_distinct_cases_over_every_command() -> None:
    assert len(CASES) >= 150
    assert len({c[0] for c in CASES}) == len(CASES), "case ids must be unique"
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    covered = {args[0] for _, args, _ in CASES}
    assert set(group.commands) - {"analyse"} <= covered, set(group.commands) - covered
    nas = group.commands["nas"]
    assert isinstance(nas, TyperGroup)
    assert set(nas.commands) <= {args[1] for _, args, _ in CASES if args[0] == "nas" and len(args) > 1}


@pytest.mark.parametrize(("args", "message"), [pytest.param(a, m, id=i) for i, a, m in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    args: list[str], message: str, inputs: Path, workdir: Path
) -> None:
    argv = [a.replace("{d}", str(inputs)) for a in args]
    before = _snapshot(inputs, workdir)
    result = runner.invoke(app, argv)
    stderr = result.stderr
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert message.replace("{d}", str(inputs)) in lines[0], stderr
    assert result.stdout == "", result.stdout
    assert _snapshot(inputs, workdir) == before, "a refused command created or changed a file"


# -- names inside inputs never steer a write ----------------------------------------------------------------------
_CLIMB = "../../../../../../../../../../tmp/tstack-escaped"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_no_command_writes_outside_the_folder_it_was_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config.json whose `_name_or_path` climbs out (`../../..`), a hardware file named the same way: every
    command that writes puts its files inside the folder (or at the file) it was given, with names that hold no
    path, and nothing appears anywhere else, not even in the working folder."""
    escaped = Path("/tmp/tstack-escaped")
    leftovers = {p for p in escaped.parent.glob("tstack-escaped*")}
    inputs = tmp_path / "inputs"
    (inputs / "hf").mkdir(parents=True)
    config = {**_BERT, "_name_or_path": _CLIMB + "/model"}
    (inputs / "hf" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (inputs / "model.yaml").write_text(_MODEL_YAML.replace("name: tiny", f"name: '{_CLIMB}/yaml'"), encoding="utf-8")
    (inputs / "hw.yaml").write_text(_hardware_yaml(name=f"'{_CLIMB}/hw'"), encoding="utf-8")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    hf, hw, model = str(inputs / "hf"), str(inputs / "hw.yaml"), str(inputs / "model.yaml")
    before = _files(tmp_path)
    runs: list[tuple[list[str], str]] = [
        (["analyze", hf, model, "--seq", "16,32", "--plot", "{out}"], "folder"),
        (["simulate", hf, "--hw", hw, "--seq", "16", "--plot", "{out}"], "folder"),
        (["compare", model, "--hw", f"{hw},gemmini-baseline", "--seq", "16", "--plot", "{out}"], "folder"),
        (
            [
                "sweep",
                hf,
                "--hw",
                hw,
                "--seq",
                "16",
                "--set",
                "pe=8,16",
                "--set",
                "scratchpad=64K,128K",
                "--plot",
                "{out}",
            ],
            "folder",
        ),
        (["mapspace", "--hw", hw, "--samples", "20", "--ops", "bert-base-mha", "--plot", "{out}"], "folder"),
        (
            [
                "mapspace",
                "--hw",
                hw,
                "--samples",
                "20",
                "--ops",
                "bert-base-mha",
                "--semantics",
                "nest",
                "--export",
                "{out}",
            ],
            "folder",
        ),
        (["map", hf, "--hw", hw, "--seq", "16", "--op", "layer0.ffn.up", "--export", "{out}/best.yaml"], "file"),
        (["kernels", "--kernel", "gelu", "--bits", "8", "--plot", "{out}"], "folder"),
        (["study", "--quick", "--only", "workload", "--model", hf, "--out", "{out}"], "folder"),
    ]
    for i, (args, kind) in enumerate(runs):
        out = tmp_path / "given" / str(i) / "out"
        argv = [a.replace("{out}", str(out)) for a in args]
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, (argv, result.output, result.exception)
        new = _files(tmp_path) - before
        assert new, f"{args[0]} wrote nothing"
        if kind == "file":
            assert new == {out / "best.yaml"}, (args[0], sorted(map(str, new)))
        else:
            outside = [p for p in new if out not in p.parents]
            assert not outside, (args[0], sorted(map(str, outside)))
            assert all(p.name.count("..") == 0 for p in new), sorted(p.name for p in new)
        before |= new
    assert {p for p in escaped.parent.glob("tstack-escaped*")} == leftovers, "a file escaped to /tmp"
    assert not any(cwd.iterdir()), "a command wrote into the working folder"
