"""Error of each integer kernel against its float function as the input precision varies (`tstack kernels`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tstack.kernels.gelu import gelu_float, gelu_safe_pre_shift, int_gelu
from tstack.kernels.layernorm import int_layernorm, layernorm_float
from tstack.kernels.quant import FloatArray, IntArray, KernelInputError, coarsen, dequantize, quantize, symmetric_scale
from tstack.kernels.softmax import (
    LN2_IBERT,
    gemmini_exp_min_scale,
    ibert_exp_min_scale,
    int_exp,
    int_softmax,
    softmax_float,
)

DEFAULT_BITS = (8, 12, 16, 20, 24, 32)


@dataclass(frozen=True, slots=True)
class KernelError:
    """Max and mean absolute error of one kernel at one input precision, on a stated input distribution."""

    kernel: str
    variant: str
    bits: int
    max_abs_error: float
    mean_abs_error: float
    inputs: str


def _sym(x: FloatArray, bits: int) -> tuple[IntArray, float]:
    s = float(symmetric_scale(x.min(), x.max(), bits))
    return quantize(x, s, bits), s


def gelu_error(bits: int, variant: str = "ibert", *, seed: int = 0, size: int = 100_000) -> KernelError:
    """i-GELU on x ~ N(0, 2²) clipped to [-10, 10], quantized per tensor to `bits` (input pre-shifted to fit int64)."""
    rng = np.random.default_rng(seed)
    x = np.clip(rng.normal(0.0, 2.0, size), -10, 10)
    q, s = _sym(x, bits)
    k = gelu_safe_pre_shift(bits, s, variant)  # type: ignore[arg-type]
    y, s_y = int_gelu(q, s, bits=bits, variant=variant, pre_shift=k)  # type: ignore[arg-type]
    err = np.abs(dequantize(y, s_y) - gelu_float(x))
    return KernelError("gelu", variant, bits, float(err.max()), float(err.mean()), "N(0,2²) clipped to ±10")


def exp_error(bits: int, variant: str = "ibert", *, seed: int = 0, size: int = 100_001) -> KernelError:
    """i-exp on a dense grid of (-ln2, 0] (the polynomial's own interval), quantized to `bits` with |x| ≤ ln2."""
    x: FloatArray = np.linspace(LN2_IBERT, 0.0, size, dtype=np.float64)[1:]
    q, s = _sym(x, bits)
    q, s, _ = coarsen(q, s, _exp_min_scale(variant))
    e, s_e = int_exp(q, s, bits=bits, variant=variant)  # type: ignore[arg-type]
    err = np.abs(dequantize(e, s_e) - np.exp(x))
    return KernelError("exp", variant, bits, float(err.max()), float(err.mean()), "grid on (-ln2, 0]")


def softmax_error(bits: int, variant: str = "ibert", *, seed: int = 0) -> KernelError:
    """i-Softmax on scores ~ N(0, 3²), 12 heads × 128 × 128, quantized per tensor to `bits`; output 8 bits."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.0, (12, 128, 128))
    q, s = _sym(x, bits)
    # Finer scores overflow the reference algorithm's 2^30-scaled exp; drop low bits first (exact floor shift).
    q, s, _ = coarsen(q, s, _exp_min_scale(variant))
    p, s_p = int_softmax(q, s, bits=bits, variant=variant)  # type: ignore[arg-type]
    err = np.abs(dequantize(p, s_p) - softmax_float(x))
    return KernelError("softmax", variant, bits, float(err.max()), float(err.mean()), "N(0,3²) 12×128×128")


def layernorm_error(bits: int, variant: str = "ibert", *, seed: int = 0) -> KernelError:
    """i-LayerNorm over C = 768 on x ~ N(0, 1) + per-row offsets, γ = 1, β = 0, input quantized to `bits`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (64, 768)) + rng.normal(0.0, 2.0, (64, 1))
    # int64 limits: Σ y² over 768 channels needs y < 2^26 in the Gemmini variant; I-BERT pre-shifts instead.
    in_bits = min(bits, 31 if variant == "ibert" else 26)
    q, s = _sym(x, in_bits)
    w, b = np.ones(768), np.zeros(768)
    y, s_y = int_layernorm(q, s, w, b, bits=in_bits, variant=variant)  # type: ignore[arg-type]
    err = np.abs(dequantize(y, s_y) - layernorm_float(x, w, b))
    return KernelError(
        "layernorm", variant, bits, float(err.max()), float(err.mean()), f"N(0,1)+offset, C=768, {in_bits}-bit"
    )


def _exp_min_scale(variant: str) -> float:
    return ibert_exp_min_scale() if variant == "ibert" else gemmini_exp_min_scale()


ERROR_FUNCTIONS: dict[str, Callable[[int, str], KernelError]] = {
    "gelu": gelu_error,
    "exp": exp_error,
    "softmax": softmax_error,
    "layernorm": layernorm_error,
}


def error_table(
    kernels: tuple[str, ...] = ("gelu", "exp", "softmax", "layernorm"),
    bits: tuple[int, ...] = DEFAULT_BITS,
    variants: tuple[str, ...] = ("ibert", "gemmini"),
) -> list[KernelError]:
    """Every (kernel, variant, bits) error, in that order."""
    rows = []
    for kernel in kernels:
        if kernel not in ERROR_FUNCTIONS:
            raise KernelInputError(f"unknown kernel {kernel!r}; choose from {', '.join(ERROR_FUNCTIONS)}")
        for variant in variants:
            for b in bits:
                if not 4 <= b <= 32:
                    raise KernelInputError(f"input bits must be in 4..32; got {b}")
                rows.append(ERROR_FUNCTIONS[kernel](b, variant))
    return rows
