"""Independent anchors from `transformers` models built from the same config (random weights, offline).

Parameter counts must equal sum(p.numel()) of the real model; matmul FLOPs must equal torch's FlopCounterMode on
the same model with eager attention (so Q x K^T and scores x V are real matmuls the counter sees).
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import tstack  # noqa: E402
from tstack.profile.measure import cache_kwarg  # noqa: E402
from tstack.workload import OpKind, Phase  # noqa: E402

SMALL = {"vocab_size": 1000}


def _small_configs() -> dict[str, Any]:
    t = transformers
    return {
        "bert": t.BertConfig(
            hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, **SMALL
        ),
        "roberta": t.RobertaConfig(
            hidden_size=96, num_hidden_layers=2, num_attention_heads=4, intermediate_size=200, **SMALL
        ),
        "distilbert": t.DistilBertConfig(dim=128, n_layers=2, n_heads=4, hidden_dim=300, **SMALL),
        "gpt2": t.GPT2Config(n_embd=128, n_layer=2, n_head=4, n_positions=256, **SMALL),
        "opt": t.OPTConfig(
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            ffn_dim=256,
            max_position_embeddings=256,
            word_embed_proj_dim=128,
            **SMALL,
        ),
        "opt-proj": t.OPTConfig(
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            ffn_dim=256,
            max_position_embeddings=256,
            word_embed_proj_dim=64,
            do_layer_norm_before=False,
            **SMALL,
        ),
        "gpt_neox": t.GPTNeoXConfig(
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=256,
            rotary_pct=1.0,
            **SMALL,
        ),
        "llama": t.LlamaConfig(
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=8,
            num_key_value_heads=2,
            intermediate_size=352,
            **SMALL,
        ),
        "mistral": t.MistralConfig(
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            intermediate_size=256,
            **SMALL,
        ),
        "vit": t.ViTConfig(
            hidden_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=192,
            image_size=64,
            patch_size=16,
        ),
    }


def _eager(config: Any) -> Any:
    config._attn_implementation = "eager"
    return config


def _model(config: Any) -> Any:
    torch.manual_seed(0)
    return transformers.AutoModel.from_config(_eager(config)).eval()


@pytest.mark.parametrize("family", list(_small_configs()))
def test_params_equal_transformers_model(family: str) -> None:
    config = _small_configs()[family]
    expected = sum(p.numel() for p in _model(config).parameters())
    assert tstack.count_params(tstack.load_model(config)) == expected


def test_params_with_untied_lm_head_equal_causal_lm() -> None:
    config = _small_configs()["llama"]
    config.architectures = ["LlamaForCausalLM"]
    lm = transformers.AutoModelForCausalLM.from_config(_eager(config))
    spec = tstack.load_model(config)
    assert spec.lm_head and not spec.tied_embeddings
    assert tstack.count_params(spec) == sum(p.numel() for p in lm.parameters())


@pytest.mark.parametrize(
    ("preset", "config", "expected"),
    [
        ("bert-base", lambda: transformers.BertConfig(), 109_482_240),
        ("gpt2", lambda: transformers.GPT2Config(), 124_439_808),
    ],
)
def test_models_of_record_params(preset: str, config: Any, expected: int) -> None:
    """The presets equal both the published count and the real model built from the HF default config."""
    assert tstack.count_params(tstack.load_model(preset)) == expected
    assert sum(p.numel() for p in _model(config()).parameters()) == expected


def _matmul_flops(spec: Any, seq: int, phase: Phase) -> float:
    analysis = tstack.analyze(spec, [seq], phase=phase)
    return sum(c.flops for c in analysis.results[0].ops if c.kind in (OpKind.MATMUL, OpKind.CONV))


def _counted_flops(model: Any, inputs: dict[str, Any]) -> int:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    return int(counter.get_total_flops())


def test_bert_base_flops_equal_flop_counter() -> None:
    model = _model(transformers.BertConfig())
    ids = torch.zeros(1, 128, dtype=torch.long)
    counted = _counted_flops(model, {"input_ids": ids})
    assert counted == 22_348_431_360  # ml-anchors §1.3, measured with FlopCounterMode on torch 2.13
    assert _matmul_flops(tstack.load_model("bert-base"), 128, Phase.ENCODER) == counted


@pytest.mark.parametrize("family", [f for f in _small_configs() if f != "vit"])
def test_small_models_flops_equal_flop_counter(family: str) -> None:
    config = _small_configs()[family]
    model = _model(config)
    spec = tstack.load_model(config)
    seq = 48
    counted = _counted_flops(model, {"input_ids": torch.zeros(1, seq, dtype=torch.long)})
    phase = Phase.ENCODER if spec.family.value == "encoder" else Phase.PREFILL
    assert _matmul_flops(spec, seq, phase) == counted


def test_vit_flops_equal_flop_counter() -> None:
    config = _small_configs()["vit"]
    model = _model(config)
    spec = tstack.load_model(config)
    counted = _counted_flops(model, {"pixel_values": torch.zeros(1, 3, 64, 64)})
    assert _matmul_flops(spec, spec.default_seq_len(), Phase.ENCODER) == counted


def test_gpt2_generation_flops_equal_flop_counter_over_kv_cache_steps() -> None:
    """The generate phase (l steps, KV cache, no prompt) equals FlopCounterMode over a real token-by-token loop."""
    config = _small_configs()["gpt2"]
    model = _model(config)
    steps = 20
    name = cache_kwarg(model)  # `cache` in newer transformers, `past_key_values` before
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        past = None
        for _ in range(steps):
            out = model(input_ids=torch.zeros(1, 1, dtype=torch.long), use_cache=True, **{name: past})
            past = out.past_key_values
    assert _matmul_flops(tstack.load_model(config), steps, Phase.GENERATE) == counter.get_total_flops()
