"""Stable JSON documents. Each has a `schema` field; a change of meaning bumps its version.

`tstack.analyze/1`:
  schema, model {name, kind: transformer|cnn, family, layers, d_model}, phase, convention, batch, bits, params,
  device {name, peak_ops_per_s, mem_bandwidth_bytes_per_s} or null,
  results: [{seq_len, kv_cache_bytes,
             classes: {mha_proj|mha_act|ffn_proj|other  (CNN: conv|batchnorm|relu|other):
                       {flops, mops_bytes, arithmetic_intensity, flops_share, mops_share}},
             op_classes: {<fine op class>: same fields},
             total: {flops, mops_bytes, arithmetic_intensity},
             roofline: {time_s, time_by_class_s, compute_bound_share, ridge_flops_per_byte} (with a device),
             ops: [{name, kind, op_class, instances, flops, mops_bytes, arithmetic_intensity}] (with ops=True)}],
  fused: {classes, total} (CNN only: BatchNorm folded, ReLU fused).
FLOPs count a MAC as 2; bytes are at `bits` per element; an arithmetic intensity with no bytes is null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tstack.workload import ModelSpec, Totals, WorkloadAnalysis
from tstack.workload.model_analysis import Analysis

ANALYZE_SCHEMA = "tstack.analyze/1"


def _ai(value: float) -> float | None:
    return None if math.isinf(value) else value


def _totals(t: Totals, whole: Totals | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "flops": t.flops,
        "mops_bytes": t.mops_bytes,
        "arithmetic_intensity": _ai(t.arithmetic_intensity),
    }
    if whole is not None:
        doc["flops_share"] = t.flops / whole.flops if whole.flops else 0.0
        doc["mops_share"] = t.mops_bytes / whole.mops_bytes if whole.mops_bytes else 0.0
    return doc


def _table(groups: Mapping[Any, Totals], whole: Totals) -> dict[str, Any]:
    return {str(k): _totals(v, whole) for k, v in groups.items()}


def _result(r: WorkloadAnalysis, *, ops: bool) -> dict[str, Any]:
    whole = r.total
    doc: dict[str, Any] = {
        "seq_len": r.workload.seq_len,
        "kv_cache_bytes": r.kv_cache_bytes,
        "classes": _table(r.by_group(), whole),
        "op_classes": _table(r.by_class(), whole),
        "total": _totals(whole),
    }
    if ops:
        doc["ops"] = [
            {
                "name": c.name,
                "kind": str(c.kind),
                "op_class": str(c.op_class),
                "instances": c.instances,
                "flops": c.flops,
                "mops_bytes": c.mops_bytes,
                "arithmetic_intensity": _ai(c.arithmetic_intensity),
            }
            for c in r.ops
        ]
    return doc


def analysis_document(a: Analysis, *, ops: bool = False) -> dict[str, Any]:
    spec = a.model
    model: dict[str, Any] = {"name": spec.name}
    if isinstance(spec, ModelSpec):
        model |= {
            "kind": "transformer",
            "family": str(spec.family),
            "layers": spec.n_layers,
            "d_model": spec.d_model,
        }
    else:
        model |= {
            "kind": "cnn",
            "family": "cnn",
            "layers": sum(spec.blocks_per_stage) * 3 + 2,
            "d_model": None,
        }
    results = [_result(r, ops=ops) for r in a.results]
    for doc, rl in zip(results, a.rooflines, strict=False):
        doc["roofline"] = {
            "time_s": rl.time_s,
            "time_by_class_s": {str(k): v for k, v in rl.time_by_class_s().items()},
            "compute_bound_share": rl.compute_bound_share,
            "ridge_flops_per_byte": rl.device.ridge_point(rl.bits),
        }
    device = None
    if a.device is not None:
        device = {
            "name": a.device.name,
            "peak_ops_per_s": {str(b): v for b, v in a.device.peak_ops_per_s},
            "mem_bandwidth_bytes_per_s": a.device.mem_bandwidth_bytes_per_s,
        }
    document: dict[str, Any] = {
        "schema": ANALYZE_SCHEMA,
        "model": model,
        "phase": str(a.phase),
        "convention": str(a.convention),
        "batch": a.batch,
        "bits": a.bits,
        "params": a.results[0].params,
        "device": device,
        "results": results,
    }
    if a.fused is not None:
        document["fused"] = {
            "classes": _table(a.fused.by_group(), a.fused.total),
            "total": _totals(a.fused.total),
        }
    return document
