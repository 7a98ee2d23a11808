"""Integer-only forward vs. the float forward of the same model on real sentences (`tstack quantize`).

Needs torch + transformers (the `ml` extra) for the tokenizer and the float reference; the integer forward itself is
numpy only. The model's config.json arrives parsed (a `ModelSpec` from `tstack.spec`), so that one parser reads it.
Metrics: cosine of mean-pooled sentence embeddings (mean, min), Spearman correlation of all pairwise cosine
similarities, and top-1 nearest-neighbour agreement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tstack.errors import TstackError
from tstack.kernels.encoder import CalibratedEncoder, calibrate, embed
from tstack.kernels.encoder_weights import ModelLoadError, encoder_config, load_bert
from tstack.kernels.quant import FloatArray, IntArray
from tstack.workload.model import ModelSpec


@dataclass(frozen=True, slots=True)
class QuantizeReport:
    """Accuracy of the integer-only forward against the float forward (same weights) on `n_eval` sentences."""

    model_path: str
    n_calib: int
    n_eval: int
    cosine_mean: float
    cosine_min: float
    spearman_pairwise: float
    nn_top1_agreement: float
    float_seconds: float
    int_seconds: float


@dataclass(frozen=True, slots=True)
class IntegerEvaluation:
    """The accuracy report and the calibrated encoder it measured."""

    report: QuantizeReport
    encoder: CalibratedEncoder


def _rank(x: FloatArray) -> FloatArray:
    order = np.argsort(x, kind="mergesort")
    ranks: FloatArray = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    # average ties
    vals, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    if len(vals) != len(x):
        sums = np.zeros(len(vals))
        np.add.at(sums, inv, ranks)
        ranks = sums[inv] / counts[inv]
    return ranks


def spearman(a: FloatArray, b: FloatArray) -> float:
    ra, rb = _rank(np.asarray(a, dtype=np.float64)), _rank(np.asarray(b, dtype=np.float64))
    return float(np.corrcoef(ra, rb)[0, 1])


def compare_embeddings(ref: FloatArray, test: FloatArray) -> tuple[FloatArray, float, float]:
    """(per-sentence cosine, Spearman of pairwise similarities, top-1 nearest-neighbour agreement)."""

    def unit(x: FloatArray) -> FloatArray:
        out: FloatArray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return out

    ur, ut = unit(ref), unit(test)
    cos = (ur * ut).sum(axis=1)
    sr, st = ur @ ur.T, ut @ ut.T
    iu = np.triu_indices(len(ref), k=1)
    rho = spearman(sr[iu], st[iu]) if len(iu[0]) > 1 else float("nan")
    np.fill_diagonal(sr, -np.inf)
    np.fill_diagonal(st, -np.inf)
    nn = float(np.mean(sr.argmax(axis=1) == st.argmax(axis=1))) if len(ref) > 1 else float("nan")
    return cos, rho, nn


def batches(
    tokenizer: Callable[..., Any], sentences: Sequence[str], batch_size: int, max_tokens: int
) -> list[tuple[IntArray, IntArray]]:
    out = []
    for i in range(0, len(sentences), batch_size):
        enc = tokenizer(
            list(sentences[i : i + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_tokens,
            return_tensors="np",
        )
        out.append((np.asarray(enc["input_ids"], dtype=np.int64), np.asarray(enc["attention_mask"], dtype=np.int64)))
    return out


def evaluate_integer_model(
    model_path: str | Path,
    model: ModelSpec,
    calib_sentences: Sequence[str],
    eval_sentences: Sequence[str],
    *,
    batch_size: int = 32,
    max_tokens: int = 64,
    local_files_only: bool = True,
) -> IntegerEvaluation:
    """Calibrate the integer encoder of the BertModel folder `model_path` (whose config.json parses to `model`) on
    `calib_sentences`, then compare it with the float BertModel on `eval_sentences` (mean pooling over tokens).
    `local_files_only` keeps transformers from asking the model hub for anything (the folder has it all)."""
    if not calib_sentences or not eval_sentences:
        raise TstackError("calibration and evaluation each need at least one sentence")
    try:
        import torch
        from transformers import AutoTokenizer, BertModel
    except ImportError:
        raise TstackError("the float reference needs torch and transformers: pip install 'tstack[ml]'") from None
    weights = load_bert(model_path, encoder_config(model, f"{Path(model_path) / 'config.json'}"))
    try:
        tok = AutoTokenizer.from_pretrained(str(model_path), local_files_only=local_files_only)
        ref_model: Any = BertModel.from_pretrained(
            str(model_path), add_pooling_layer=False, local_files_only=local_files_only
        )
        ref_model.eval()
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load {model_path} with transformers: {exc}") from None
    enc = calibrate(weights, batches(tok, calib_sentences, batch_size, max_tokens))
    eval_batches = batches(tok, eval_sentences, batch_size, max_tokens)
    t0 = time.perf_counter()
    ref_parts = []
    with torch.inference_mode():
        for ids, mask in eval_batches:
            h = ref_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
            m = torch.from_numpy(mask).unsqueeze(-1).to(h.dtype)
            ref_parts.append(((h * m).sum(1) / m.sum(1).clamp(min=1)).double().numpy())
    t1 = time.perf_counter()
    int_parts = [embed(enc, ids, mask) for ids, mask in eval_batches]
    t2 = time.perf_counter()
    cos, rho, nn = compare_embeddings(np.concatenate(ref_parts), np.concatenate(int_parts))
    report = QuantizeReport(
        str(model_path),
        len(calib_sentences),
        len(eval_sentences),
        float(cos.mean()),
        float(cos.min()),
        rho,
        nn,
        t1 - t0,
        t2 - t1,
    )
    return IntegerEvaluation(report, enc)
