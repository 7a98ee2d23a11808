"""Rich tables in the layout of the paper's Tables 3, 4, 10 and 11."""

from __future__ import annotations

from rich.table import Table

from tstack.units import seconds_to_ms, to_giga
from tstack.workload import Totals, WorkloadAnalysis
from tstack.workload.model_analysis import Analysis
from tstack.workload.roofline import RooflineResult

_GROUP_LABELS = {
    "mha_proj": "MHA proj.",
    "mha_act": "MHA act-to-act",
    "ffn_proj": "FFN proj.",
    "conv": "Convolution",
    "batchnorm": "BatchNorm",
    "relu": "ReLU",
    "other": "Other",
}


def _fmt_g(value: float) -> str:
    g = to_giga(value)
    return f"{g:.2f}" if g >= 0.1 or g == 0 else f"{g:.3g}"


def _fmt_ai(t: Totals) -> str:
    ai = t.arithmetic_intensity
    return "—" if ai == float("inf") else f"{ai:.2f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}" if whole else "—"


def analysis_table(r: WorkloadAnalysis, rl: RooflineResult | None, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Operator")
    for col in ("GFLOPs", "%FLOPs", "GMOPs", "%MOPs", "AI"):
        table.add_column(col, justify="right")
    times: dict[str, list[float]] = {}  # group -> [compute-bound time, memory-bound time]
    if rl is not None:
        table.add_column("roofline ms", justify="right")
        table.add_column("bound", justify="left")
        for op in rl.ops:
            split = times.setdefault(r.group_of(op.op_class), [0.0, 0.0])
            split[0 if op.compute_bound else 1] += op.time_s
    whole = r.total
    for name, t in r.by_group().items():
        row = [
            _GROUP_LABELS.get(name, name),
            _fmt_g(t.flops),
            _pct(t.flops, whole.flops),
            _fmt_g(t.mops_bytes),
            _pct(t.mops_bytes, whole.mops_bytes),
            _fmt_ai(t),
        ]
        if rl is not None:
            compute_s, memory_s = times.get(name, [0.0, 0.0])
            row += [
                f"{seconds_to_ms(compute_s + memory_s):.3f}",
                "compute" if compute_s >= memory_s else "memory",
            ]
        table.add_row(*row)
    total_row = ["Total", _fmt_g(whole.flops), "100", _fmt_g(whole.mops_bytes), "100", _fmt_ai(whole)]
    if rl is not None:
        total_row += [f"{seconds_to_ms(rl.time_s):.3f}", f"{100 * rl.compute_bound_share:.0f}% cmp"]
    table.add_row(*total_row, style="bold")
    return table


def analysis_tables(a: Analysis) -> list[Table]:
    tables = []
    for i, r in enumerate(a.results):
        rl = a.rooflines[i] if a.rooflines else None
        if a.fused is not None:
            title = f"{a.model.name} · unfused · {a.convention}"
        else:
            title = f"{a.model.name} · {a.phase} · l = {r.workload.seq_len} · {a.convention}"
        tables.append(analysis_table(r, rl, title))
    if a.fused is not None:
        tables.append(analysis_table(a.fused, None, f"{a.model.name} · fused (BatchNorm folded, ReLU fused)"))
    return tables
