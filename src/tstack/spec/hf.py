"""Hugging Face configs (a `config.json` or a `transformers` config object) to model descriptions, offline.

Each supported family maps the config's own field names onto a `TransformerFile`; defaults are those of the
corresponding `transformers` config class, so a sparse config.json reads as `transformers` would read it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tstack.errors import SpecError, UnsupportedModelError
from tstack.spec.model_file import model_from_mapping
from tstack.workload.model import ModelSpec

_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
    "silu": "swiglu",  # in Llama-style MLPs silu gates the up projection
    "swish": "swiglu",
}

Fields = dict[str, Any]


def _activation(cfg: Fields, key: str, default: str) -> str:
    name = str(cfg.get(key) or default)
    if name not in _ACTIVATIONS:
        raise UnsupportedModelError(
            f"activation {name!r} is not supported; supported: {', '.join(sorted(_ACTIVATIONS))}"
        )
    return _ACTIVATIONS[name]


def _has_lm_head(cfg: Fields) -> bool:
    archs = cfg.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise SpecError(f"'architectures' must be a list of class names such as [\"GPT2LMHeadModel\"], got {archs!r}")
    return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)


def _bert(cfg: Fields) -> Fields:
    position = cfg.get("position_embedding_type", "absolute")
    if position != "absolute":  # relative_key(_query) adds distance embeddings inside attention; not modelled
        raise UnsupportedModelError(
            f"position_embedding_type {str(position)[:40]!r} is not supported; only 'absolute' position embeddings"
        )
    return {
        "family": "encoder",
        "layers": cfg.get("num_hidden_layers", 12),
        "d_model": cfg.get("hidden_size", 768),
        "heads": cfg.get("num_attention_heads", 12),
        "d_ff": cfg.get("intermediate_size", 3072),
        "activation": _activation(cfg, "hidden_act", "gelu"),
        "vocab_size": cfg.get("vocab_size", 30522),
        "max_positions": cfg.get("max_position_embeddings", 512),
        "type_vocab_size": cfg.get("type_vocab_size", 2),
        "embedding_norm": True,
        "pooler": True,
    }


def _roberta(cfg: Fields) -> Fields:
    return _bert({"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1, **cfg})


def _distilbert(cfg: Fields) -> Fields:
    return {
        "family": "encoder",
        "layers": cfg.get("n_layers", 6),
        "d_model": cfg.get("dim", 768),
        "heads": cfg.get("n_heads", 12),
        "d_ff": cfg.get("hidden_dim", 3072),
        "activation": _activation(cfg, "activation", "gelu"),
        "vocab_size": cfg.get("vocab_size", 30522),
        "max_positions": cfg.get("max_position_embeddings", 512),
        "embedding_norm": True,
    }


def _gpt2(cfg: Fields) -> Fields:
    d = cfg.get("n_embd", 768)
    return {
        "family": "decoder",
        "layers": cfg.get("n_layer", 12),
        "d_model": d,
        "heads": cfg.get("n_head", 12),
        "d_ff": cfg.get("n_inner") or 4 * d,
        "activation": _activation(cfg, "activation_function", "gelu_new"),
        "norm_placement": "pre",
        "vocab_size": cfg.get("vocab_size", 50257),
        "max_positions": cfg.get("n_positions", 1024),
        "final_norm": True,
        "lm_head": _has_lm_head(cfg),
        "tied_embeddings": cfg.get("tie_word_embeddings", True),
    }


def _opt(cfg: Fields) -> Fields:
    d = cfg.get("hidden_size", 768)
    pre = cfg.get("do_layer_norm_before", True)
    bias = cfg.get("enable_bias", True)
    return {
        "family": "decoder",
        "layers": cfg.get("num_hidden_layers", 12),
        "d_model": d,
        "heads": cfg.get("num_attention_heads", 12),
        "d_ff": cfg.get("ffn_dim", 3072),
        "activation": _activation(cfg, "activation_function", "relu"),
        "norm_placement": "pre" if pre else "post",
        "vocab_size": cfg.get("vocab_size", 50272),
        "max_positions": cfg.get("max_position_embeddings", 2048),
        "position_offset": 2,  # OPTLearnedPositionalEmbedding reserves two rows
        "attn_bias": bias,
        "mlp_bias": bias,
        "norm_bias": cfg.get("layer_norm_elementwise_affine", True),
        "final_norm": pre and not cfg.get("_remove_final_layer_norm", False),
        "embedding_proj_dim": cfg.get("word_embed_proj_dim") or d,
        "lm_head": _has_lm_head(cfg),
        "tied_embeddings": cfg.get("tie_word_embeddings", True),
    }


def _gpt_neox(cfg: Fields) -> Fields:
    return {
        "family": "decoder",
        "layers": cfg.get("num_hidden_layers", 44),
        "d_model": cfg.get("hidden_size", 6144),
        "heads": cfg.get("num_attention_heads", 64),
        "d_ff": cfg.get("intermediate_size", 24576),
        "activation": _activation(cfg, "hidden_act", "gelu"),
        "norm_placement": "pre",
        "vocab_size": cfg.get("vocab_size", 50432),
        "max_positions": cfg.get("max_position_embeddings", 2048),
        "position_embedding": "rotary",
        "attn_bias": cfg.get("attention_bias", True),
        "final_norm": True,
        "lm_head": _has_lm_head(cfg),
        "tied_embeddings": cfg.get("tie_word_embeddings", False),
    }


def _llama(cfg: Fields) -> Fields:
    heads = cfg.get("num_attention_heads", 32)
    d = cfg.get("hidden_size", 4096)
    act = _activation(cfg, "hidden_act", "silu")
    if act != "swiglu":
        raise UnsupportedModelError(f"Llama-style MLP with activation {cfg.get('hidden_act')!r} is not supported")
    return {
        "family": "decoder",
        "layers": cfg.get("num_hidden_layers", 32),
        "d_model": d,
        "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads") or heads,
        "d_ff": cfg.get("intermediate_size", 11008 if cfg.get("model_type") == "llama" else 14336),
        "head_dim": cfg.get("head_dim") or None,
        "activation": "swiglu",
        "norm": "rmsnorm",
        "norm_placement": "pre",
        "vocab_size": cfg.get("vocab_size", 32000),
        "max_positions": cfg.get("max_position_embeddings", 2048),
        "position_embedding": "rotary",
        "attn_bias": cfg.get("attention_bias", False),
        "mlp_bias": cfg.get("mlp_bias", False),
        "final_norm": True,
        "lm_head": _has_lm_head(cfg),
        "tied_embeddings": cfg.get("tie_word_embeddings", False),
    }


def _vit(cfg: Fields) -> Fields:
    return {
        "family": "encoder",
        "layers": cfg.get("num_hidden_layers", 12),
        "d_model": cfg.get("hidden_size", 768),
        "heads": cfg.get("num_attention_heads", 12),
        "d_ff": cfg.get("intermediate_size", 3072),
        "activation": _activation(cfg, "hidden_act", "gelu"),
        "norm_placement": "pre",
        "vocab_size": 0,
        "max_positions": 0,
        "attn_bias": cfg.get("qkv_bias", True),
        "final_norm": True,
        "pooler": True,
        "patch": {
            "image_px": cfg.get("image_size", 224),
            "patch_px": cfg.get("patch_size", 16),
            "channels": cfg.get("num_channels", 3),
        },
    }


_FAMILIES: dict[str, Callable[[Fields], Fields]] = {
    "bert": _bert,
    "ibert": _bert,  # IBertConfig: BERT's fields and defaults (quantization flags aside)
    "roberta": _roberta,
    "distilbert": _distilbert,
    "gpt2": _gpt2,
    "opt": _opt,
    "gpt_neox": _gpt_neox,
    "llama": _llama,
    "mistral": _llama,
    "vit": _vit,
}

SUPPORTED_FAMILIES = tuple(_FAMILIES)


def model_from_hf_dict(cfg: Any, origin: str, name: str | None = None) -> ModelSpec:
    """Translate a Hugging Face config (as a dict, e.g. a parsed config.json) into a `ModelSpec`."""
    if not isinstance(cfg, dict):
        raise SpecError(f"{origin}: a Hugging Face config must be a JSON object, got {type(cfg).__name__}")
    model_type = cfg.get("model_type")
    if model_type is None:
        raise UnsupportedModelError(
            f"{origin}: no 'model_type' field, so the model family is unknown; "
            f"supported families: {', '.join(SUPPORTED_FAMILIES)}"
        )
    if not isinstance(model_type, str) or model_type not in _FAMILIES:
        raise UnsupportedModelError(
            f"{origin}: model family {str(model_type)[:60]!r} is not supported; "
            f"supported families: {', '.join(SUPPORTED_FAMILIES)}"
        )
    try:
        fields = _FAMILIES[model_type](cfg)
    except SpecError as exc:
        raise type(exc)(f"{origin}: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise SpecError(f"{origin}: malformed {model_type} config: {str(exc)[:200]}; check the field types") from None
    given = cfg.get("_name_or_path")
    fields["name"] = name or (given if isinstance(given, str) and given else model_type)
    fields["source"] = origin
    spec = model_from_mapping(fields, origin)
    assert isinstance(spec, ModelSpec)
    return spec


def model_from_hf_config(config: Any) -> ModelSpec:
    """Translate a `transformers.PretrainedConfig` object (no hub access; only its fields are read)."""
    to_dict = getattr(config, "to_dict", None)
    if not callable(to_dict):
        raise SpecError(f"expected a transformers config object, got {type(config).__name__}")
    data = to_dict()
    return model_from_hf_dict(data, f"{type(config).__name__}", name=data.get("_name_or_path") or None)
