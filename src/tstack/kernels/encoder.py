"""Integer-only inference of a BERT-family encoder (post-LN BERT: BertModel, MiniLM, …), I-BERT style.

Two steps, each giving a value: `calibrate` runs the integer pipeline on sample batches and returns a frozen
`CalibratedEncoder` (the quantized weights and every activation range and LayerNorm pre-shift, fixed from then on);
`reference_forward` and `fast_forward` are the two implementations of the same integer pipeline over it. The
reference spells every step in int64 with the public kernels (`tstack.kernels.encoder_reference`); the fast one
keeps int8 activations in float32 GEMM operands and requantizes in float64 where that is provably exact
(`tstack.kernels.encoder_fast`). Both give the same integers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError
from tstack.kernels._runtime import blas_threads
from tstack.kernels.encoder_fast import fast_pass
from tstack.kernels.encoder_reference import reference_pass
from tstack.kernels.encoder_scales import Calibration, CalibrationRecorder, ScaleSource
from tstack.kernels.encoder_weights import EncoderWeights
from tstack.kernels.quant import FloatArray, IntArray

_Pass = Callable[[EncoderWeights, ScaleSource, IntArray, npt.NDArray[np.bool_]], tuple[IntArray, float]]


class Pipeline(StrEnum):
    """Which implementation of the integer pipeline runs (same integers; `fast` is the default)."""

    REFERENCE = "reference"
    FAST = "fast"


_PASSES: dict[Pipeline, _Pass] = {Pipeline.REFERENCE: reference_pass, Pipeline.FAST: fast_pass}


@dataclass(frozen=True, slots=True)
class CalibratedEncoder:
    """Quantized weights and their frozen calibration: what both pipelines run on. Made by `calibrate`; equal
    when the weights are the same object and the calibrations are equal."""

    weights: EncoderWeights
    calibration: Calibration


@dataclass(frozen=True, slots=True, eq=False)
class IntegerHidden:
    """An integer last hidden state (batch, seq, d_model) and its per-tensor scale: real ≈ values · scale."""

    values: IntArray
    scale: float


#: Sample batches for calibration: (token ids (batch, seq), attention mask or None).
Batches = Iterable[tuple[npt.ArrayLike, npt.ArrayLike | None]]


def _checked(
    weights: EncoderWeights, input_ids: npt.ArrayLike, attention_mask: npt.ArrayLike | None
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    ids = np.asarray(input_ids, dtype=np.int64)
    if ids.ndim != 2 or ids.size == 0:
        raise TstackError(f"input_ids must be a non-empty (batch, seq) array; got shape {ids.shape}")
    batch, seq = ids.shape
    cfg = weights.config
    if seq > cfg.max_positions:
        raise TstackError(f"sequence length {seq} exceeds the model's {cfg.max_positions} positions; truncate")
    if ids.min() < 0 or ids.max() >= cfg.vocab:
        raise TstackError(f"token ids must lie in [0, {cfg.vocab}); got [{ids.min()}, {ids.max()}]")
    mask = np.ones((batch, seq), dtype=bool) if attention_mask is None else np.asarray(attention_mask) > 0
    return ids, mask


def _run(
    pipeline: Pipeline,
    weights: EncoderWeights,
    scales: ScaleSource,
    input_ids: npt.ArrayLike,
    attention_mask: npt.ArrayLike | None,
    threads: int | None,
) -> IntegerHidden:
    ids, mask = _checked(weights, input_ids, attention_mask)
    with blas_threads(threads):
        values, scale = _PASSES[pipeline](weights, scales, ids, mask)
    return IntegerHidden(values, scale)


def calibrate(
    weights: EncoderWeights,
    batches: Batches,
    *,
    pipeline: Pipeline = Pipeline.FAST,
    blas_thread_count: int | None = 1,
) -> CalibratedEncoder:
    """Run `pipeline` over the sample batches, recording every activation range (max |x|) and LayerNorm
    pre-shift; return them frozen with the weights. `blas_thread_count` limits the BLAS pool of the integer GEMMs
    (None: the BLAS default; 1 is robust on a shared machine)."""
    recorder = CalibrationRecorder()
    n = 0
    for ids, mask in batches:
        _run(pipeline, weights, recorder, ids, mask, blas_thread_count)
        n += 1
    if n == 0:
        raise TstackError("calibration needs at least one batch of sample text")
    return CalibratedEncoder(weights, recorder.freeze(n))


def reference_forward(
    encoder: CalibratedEncoder,
    input_ids: npt.ArrayLike,
    attention_mask: npt.ArrayLike | None = None,
    *,
    blas_thread_count: int | None = 1,
) -> IntegerHidden:
    """The integer last hidden state of token ids (batch, seq), by the literal int64 reference pipeline."""
    return _run(Pipeline.REFERENCE, encoder.weights, encoder.calibration, input_ids, attention_mask, blas_thread_count)


def fast_forward(
    encoder: CalibratedEncoder,
    input_ids: npt.ArrayLike,
    attention_mask: npt.ArrayLike | None = None,
    *,
    blas_thread_count: int | None = 1,
) -> IntegerHidden:
    """The integer last hidden state of token ids (batch, seq), by the fast pipeline (the reference's integers)."""
    return _run(Pipeline.FAST, encoder.weights, encoder.calibration, input_ids, attention_mask, blas_thread_count)


def embed(
    encoder: CalibratedEncoder,
    input_ids: npt.ArrayLike,
    attention_mask: npt.ArrayLike | None = None,
    *,
    pipeline: Pipeline = Pipeline.FAST,
    blas_thread_count: int | None = 1,
) -> FloatArray:
    """Mean-pooled sentence embeddings (float64, dequantized at the very end) over unmasked tokens."""
    forward = reference_forward if pipeline is Pipeline.REFERENCE else fast_forward
    hidden = forward(encoder, input_ids, attention_mask, blas_thread_count=blas_thread_count)
    ids = np.asarray(input_ids)
    mask = np.ones(ids.shape) if attention_mask is None else np.asarray(attention_mask, dtype=np.float64)
    summed = (hidden.values * mask[..., None]).sum(axis=1) * hidden.scale
    out: FloatArray = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    return out
