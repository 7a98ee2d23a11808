"""JSON documents of the integer kernels and of the integer-only encoder.

`tstack.kernels/1`: schema, bits, variants, errors [{kernel, variant, bits, max_abs_error, mean_abs_error,
  inputs}] (measured: each kernel against its float function), op_counts [{kernel, variant, row_length, adds,
  multiplies, shifts, comparisons, divisions, float_multiplies, passes, pass_ops, reductions, total, per_element}]
  (counted from the kernels' algorithms), notes.
`tstack.quantize/1`: schema, model_path, calibration_sentences, eval_sentences, bits {weight, bias, activation,
  embedding, gelu_input, layernorm_input}, pooling, cosine {mean, min}, spearman_pairwise_similarity,
  nearest_neighbour_top1_agreement, seconds {float, integer} (all measured), reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from tstack.kernels.accuracy import KernelError
from tstack.kernels.encoder_weights import BitWidths
from tstack.kernels.evaluate import QuantizeReport
from tstack.kernels.opcount import OpCounts

KERNELS_SCHEMA = "tstack.kernels/1"
QUANTIZE_SCHEMA = "tstack.quantize/1"


def kernels_document(
    errors: Sequence[KernelError],
    counts: Sequence[OpCounts],
    bits: Sequence[int],
    variants: Sequence[str],
    row_length: int,
) -> dict[str, Any]:
    """The `tstack.kernels/1` document: measured error rows and per-row operation counts."""
    return {
        "schema": KERNELS_SCHEMA,
        "bits": list(bits),
        "variants": list(variants),
        "errors": [asdict(e) for e in errors],
        "op_counts": [{**asdict(c), "total": c.total, "per_element": c.per_element} for c in counts],
        "notes": {
            "error": "max/mean |kernel(dequantized) - float function| on the stated inputs, per-tensor symmetric "
            "quantization of the input to `bits`",
            "op_counts": f"integer operations per row of {row_length} elements (see tstack.kernels.opcount)",
        },
    }


def quantize_document(report: QuantizeReport, bits: BitWidths) -> dict[str, Any]:
    """The `tstack.quantize/1` document: the integer-only forward measured against the float forward."""
    return {
        "schema": QUANTIZE_SCHEMA,
        "model_path": report.model_path,
        "calibration_sentences": report.n_calib,
        "eval_sentences": report.n_eval,
        "bits": asdict(bits),
        "pooling": "mean over tokens",
        "cosine": {"mean": report.cosine_mean, "min": report.cosine_min},
        "spearman_pairwise_similarity": report.spearman_pairwise,
        "nearest_neighbour_top1_agreement": report.nn_top1_agreement,
        "seconds": {"float": report.float_seconds, "integer": report.int_seconds},
        "reference": "float forward of the same weights (transformers BertModel); anchor: I-BERT emulation in "
        "transformers reaches mean cosine 0.9616 on all-MiniLM-L6-v2",
    }
