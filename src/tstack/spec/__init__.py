"""The boundary layer: validates user input (presets, YAML, HF configs) and turns it into core types."""

from tstack.spec.devices import load_device
from tstack.spec.hf import SUPPORTED_FAMILIES, model_from_hf_config, model_from_hf_dict
from tstack.spec.loading import load_model, preset_names, read_preset

__all__ = [
    "SUPPORTED_FAMILIES",
    "load_device",
    "load_model",
    "model_from_hf_config",
    "model_from_hf_dict",
    "preset_names",
    "read_preset",
]
