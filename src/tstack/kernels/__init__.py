"""I-BERT integer-only kernels (numpy; int64 results, int32 / exact-float fast paths), symmetric quantization, dyadic
requantization, per-kernel operation counts and an integer-only encoder forward of BERT-family models."""

from __future__ import annotations

from tstack.kernels._runtime import get_num_threads, set_num_threads
from tstack.kernels.accuracy import KernelError, error_table
from tstack.kernels.encoder import (
    CalibratedEncoder,
    IntegerHidden,
    Pipeline,
    calibrate,
    embed,
    fast_forward,
    reference_forward,
)
from tstack.kernels.encoder_scales import Calibration
from tstack.kernels.encoder_weights import BitWidths, EncoderConfig, EncoderWeights, encoder_config, load_bert
from tstack.kernels.gelu import gelu_float, gelu_safe_pre_shift, int_gelu
from tstack.kernels.layernorm import div_round_half_even, int_layernorm, isqrt, layernorm_float
from tstack.kernels.opcount import OpCounts, op_counts
from tstack.kernels.quant import (
    Dyadic,
    KernelInputError,
    KernelOverflowError,
    dequantize,
    dyadic,
    int_range,
    quantize,
    requantize,
    shift_round_half_even,
    symmetric_scale,
)
from tstack.kernels.softmax import int_exp, int_softmax, softmax_float

__all__ = [
    "BitWidths",
    "CalibratedEncoder",
    "Calibration",
    "Dyadic",
    "EncoderConfig",
    "EncoderWeights",
    "IntegerHidden",
    "KernelError",
    "KernelInputError",
    "KernelOverflowError",
    "OpCounts",
    "Pipeline",
    "calibrate",
    "dequantize",
    "div_round_half_even",
    "dyadic",
    "embed",
    "encoder_config",
    "error_table",
    "fast_forward",
    "gelu_float",
    "gelu_safe_pre_shift",
    "get_num_threads",
    "int_exp",
    "int_gelu",
    "int_layernorm",
    "int_range",
    "int_softmax",
    "isqrt",
    "layernorm_float",
    "load_bert",
    "op_counts",
    "quantize",
    "reference_forward",
    "requantize",
    "set_num_threads",
    "shift_round_half_even",
    "softmax_float",
    "symmetric_scale",
]
