"""The `tstack.profile/1` and `tstack.calibration/1` JSON documents and the rich tables of a measured profile.

`tstack.profile/1`:

    {"schema": "tstack.profile/1", "device": "cpu", "threads": 2, "phase": "encoder",
     "classes": [...measured classes...], "calibration": {...} | null,
     "normalized_to": {"model": ..., "seq_len": ..., "wall_min_s": ...},
     "profiles": [{"model": ..., "phase": ..., "results": [
        {"seq_len", "batch", "threads", "wall": {"min_s", "median_s", "max_s", "repeats"}, "profiled_s",
         "coverage", "normalized_latency", "classes": {class: {"time_s", "share"}},
         "unclassified": [{"name", "scope", "shapes", "time_s", "calls"}], "top_ops": [...same fields + "class"],
         "warnings": [...], "compare": null | {"method", "device", "predicted_s",
            "classes": {class: {"predicted_s", "measured_s", "predicted_share", "measured_share",
                                 "share_error_points"}}}}]}]}

Times are seconds per run (one forward; for `generate`, the whole generation of l tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from tstack.profile.calibrate import Calibration
    from tstack.profile.compare import Comparison
    from tstack.profile.measure import ProfileResult

SCHEMA = "tstack.profile/1"

LABELS = {
    "mha_proj": "MHA proj.",
    "mha_act": "MHA act-to-act",
    "ffn_proj": "FFN proj.",
    "softmax": "Softmax",
    "norm": "Norm",
    "activation": "Activation",
    "residual": "Residual/elementwise",
    "data_movement": "Data movement",
    "other": "Other",
    "unclassified": "Unclassified",
}


def _op_doc(o: Any, with_class: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"name": o.name, "scope": o.scope, "shapes": o.shapes, "time_s": o.time_s, "calls": o.calls}
    if with_class:
        d["class"] = o.op_class
    return d


def _compare_doc(c: Comparison) -> dict[str, Any]:
    rates = None
    if c.calibration is not None:
        rates = {
            "attention_seq": c.calibration.attention_seq,
            "attention_matmul_flops_per_s": c.calibration.attention_matmul_flops_per_s,
            "softmax_elements_per_s": c.calibration.softmax_elements_per_s,
            "scale_elements_per_s": c.calibration.scale_elements_per_s,
        }
    return {
        "method": c.method,
        "device": c.device.name,
        "attention_rates": rates,
        "predicted_s": c.predicted_s,
        "classes": {
            r.op_class: {
                "predicted_s": r.predicted_s,
                "measured_s": r.measured_s,
                "predicted_share": r.predicted_share,
                "measured_share": r.measured_share,
                "share_error_points": r.share_error_points,
            }
            for r in c.classes
        },
    }


def profile_document(
    runs: Sequence[Sequence[ProfileResult]],
    comparisons: dict[tuple[int, int], Comparison],
    calibration: Calibration | None,
) -> dict[str, Any]:
    """The ``tstack.profile/1`` document of one or more models' results (see the module docstring)."""
    from tstack.profile import MEASURED_CLASSES

    first = runs[0][0]
    base = first.wall.min_s
    profiles = []
    for i, results in enumerate(runs):
        rows = []
        for j, r in enumerate(results):
            cmp = comparisons.get((i, j))
            rows.append(
                {
                    "seq_len": r.seq_len,
                    "batch": r.batch,
                    "threads": r.threads,
                    "wall": {
                        "min_s": r.wall.min_s,
                        "median_s": r.wall.median_s,
                        "max_s": r.wall.max_s,
                        "repeats": r.wall.repeats,
                    },
                    "profiled_s": r.profiled_s,
                    "coverage": r.coverage,
                    "normalized_latency": r.wall.min_s / base if base else None,
                    "classes": {c: {"time_s": t, "share": r.shares()[c]} for c, t in r.class_time_s},
                    "unclassified": [_op_doc(o) for o in r.unclassified()],
                    "top_ops": [_op_doc(o, with_class=True) for o in r.ops[:10]],
                    "warnings": list(r.warnings),
                    "compare": _compare_doc(cmp) if cmp is not None else None,
                }
            )
        profiles.append({"model": results[0].model.name, "phase": results[0].phase.value, "results": rows})
    cal = None
    if calibration is not None:
        cal = {
            "name": calibration.name,
            "threads": calibration.threads,
            "matmul_flops_per_s": calibration.matmul_flops_per_s,
            "attention_matmul_flops_per_s": calibration.attention_matmul_flops_per_s,
            "mem_bandwidth_bytes_per_s": calibration.mem_bandwidth_bytes_per_s,
            "softmax_elements_per_s": calibration.softmax_elements_per_s,
            "scale_elements_per_s": calibration.scale_elements_per_s,
        }
    return {
        "schema": SCHEMA,
        "device": first.device,
        "threads": first.threads,
        "phase": first.phase.value,
        "classes": list(MEASURED_CLASSES),
        "calibration": cal,
        "normalized_to": {"model": first.model.name, "seq_len": first.seq_len, "wall_min_s": base},
        "profiles": profiles,
    }


def profile_tables(results: Sequence[ProfileResult], comparisons: dict[int, Comparison]) -> list[Table]:
    """A share-of-time table of one model's results, and per compared result (index in `results`) a predicted
    vs measured table."""
    from tstack.profile import MEASURED_CLASSES

    m = results[0]
    t = Table(
        title=f"{m.model.name} {m.phase.value} on {m.device}, {m.threads} threads: share of profiled time",
        title_justify="left",
    )
    t.add_column("class")
    for r in results:
        t.add_column(f"l={r.seq_len}", justify="right")
    for c in MEASURED_CLASSES:
        t.add_row(LABELS[c], *(f"{100 * r.shares()[c]:.1f}%" for r in results))
    t.add_row("wall min / median (ms)", *(f"{r.wall.min_s * 1e3:.1f} / {r.wall.median_s * 1e3:.1f}" for r in results))
    t.add_row("profiled op time (ms)", *(f"{r.profiled_s * 1e3:.1f}" for r in results))
    t.add_row("classified", *(f"{100 * r.coverage:.1f}%" for r in results))
    tables = [t]
    for j, cmp in comparisons.items():
        r = results[j]
        ct = Table(
            title=f"{m.model.name} l={r.seq_len}: predicted ({cmp.method}, {cmp.device.name}) vs measured",
            title_justify="left",
        )
        for col in ("class", "pred. ms", "meas. ms", "ratio", "pred. share", "meas. share", "error"):
            ct.add_column(col, justify="left" if col == "class" else "right")
        for row in cmp.classes:
            ratio = f"{row.time_ratio:.2f}" if row.measured_s else "-"
            ct.add_row(
                LABELS[row.op_class],
                f"{row.predicted_s * 1e3:.2f}",
                f"{row.measured_s * 1e3:.2f}",
                ratio,
                f"{100 * row.predicted_share:.1f}%",
                f"{100 * row.measured_share:.1f}%",
                f"{row.share_error_points:+.1f} pt",
            )
        tables.append(ct)
    return tables


def calibration_document(cal: Calibration, path: str | None) -> dict[str, Any]:
    """The `tstack.calibration/1` document: the measured rates, and where the device YAML was written (or null)."""
    return {
        "schema": "tstack.calibration/1",
        "name": cal.name,
        "device": cal.device,
        "threads": cal.threads,
        "matmul_flops_per_s": cal.matmul_flops_per_s,
        "attention_matmul_flops_per_s": cal.attention_matmul_flops_per_s,
        "mem_bandwidth_bytes_per_s": cal.mem_bandwidth_bytes_per_s,
        "softmax_elements_per_s": cal.softmax_elements_per_s,
        "scale_elements_per_s": cal.scale_elements_per_s,
        "path": path,
    }
