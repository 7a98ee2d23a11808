"""JSON documents and rich tables of simulations.

`tstack.simulate/2`: schema, model, hardware {name, clock_hz, pe {rows, cols, dataflow}, memory [{name,
  capacity_bytes}] innermost first, links [{parent, children, bytes_per_cycle}]},
  phase, seq_len, batch, latency_cycles, latency_s, energy_pj,
  edp_pj_cycles, macs, utilization, matmul_utilization, categories {matmul|softmax|layernorm|gelu|resadd|dequant|
  other: {cycles, share}}, ops [{name, kind, op_class, category, where, latency_cycles, energy_pj, macs,
  dram_bytes, mapping {tile_m, tile_n, tile_k, order} or null}] (with ops=True).
`tstack.compare/1`: schema, model, seq_len, designs [{hardware, latency_cycles, speedup, utilization,
  matmul_utilization, matmul_share, energy_pj, edp_pj_cycles, categories}] (speedup over the first design).
`tstack.sweep/1`: schema, model, seq_len, hardware, axes [{name, values}], points [{values, latency_cycles,
  utilization, matmul_utilization, energy_pj}].
`tstack.map/1`: schema, ops [{op, m, n, k, batch, best {mapping, latency_cycles, energy_pj, edp, evaluated},
  heuristic {...}, direct_conv {mapping {tiles {N, K, C, P, Q, R, S}, order}, latency_cycles, energy_pj, edp,
  evaluated} or null, heuristic_edp_ratio, heuristic_latency_ratio}] (best: the exhaustive least-EDP mapping of the
  op as a matmul, a convolution's im2col; direct_conv: a convolution's 7-loop optimum where it beats that, as
  `simulate --mapper exhaustive` runs it; the ratios are to the better of the two).
`tstack.fusion/1`: schema, results [{pair, hardware, accumulator_bytes, seq_len, non_fused {matmul_cycles,
  nonlinear_cycles, total_cycles}, fused {...}, change}] (change: fused / non-fused - 1; null if fusion cannot fit).
`tstack.mapspace/1`: schema, hardware, semantics, ops [{name, m, n, k, valid_mappings, samples, p10_relative_edp,
  within_3x_share, span, best_edp, heuristic_edp, paper {p10_relative_edp, within_3x_share} or null, mapspace
  (matmul or conv-7-loop), conv {N, K, C, P, Q, R, S, stride, H, W} or null, best_mapping {tiles by dim, order:
  DRAM order outermost first} (a nest's: its levels), best_latency_cycles, best_energy_pj}].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from tstack.hardware.design import design_of
from tstack.mapping.conv.loopnest import CONV_DIMS
from tstack.mapping.conv.mappers import ConvMapperResult
from tstack.mapping.mapspace import PAPER_STATS, MapspaceStats
from tstack.mapping.matmul.mappers import MapperResult
from tstack.mapping.nest.matmul import NestResult
from tstack.mapping.op_mapping import OpMapping
from tstack.simulate import ModelResult
from tstack.simulate.fusion import FusionResult, PairLatency
from tstack.simulate.sweep import Axis


def _categories(r: ModelResult) -> dict[str, dict[str, float]]:
    total = r.latency_cycles
    return {c: {"cycles": v, "share": v / total if total else 0.0} for c, v in r.by_category().items()}


def simulate_document(r: ModelResult, *, ops: bool = False) -> dict[str, Any]:
    hw = r.hardware
    design = design_of(hw)
    doc: dict[str, Any] = {
        "schema": "tstack.simulate/2",
        "model": r.workload.model_name,
        "hardware": {
            "name": hw.name,
            "clock_hz": hw.clock_hz,
            "pe": {"rows": hw.pe.rows, "cols": hw.pe.cols, "dataflow": str(hw.pe.dataflow)},
            "memory": [{"name": lv.name, "capacity_bytes": lv.capacity_bytes} for lv in design.memories],
            "links": [
                {"parent": link.parent, "children": list(link.children), "bytes_per_cycle": link.bytes_per_cycle}
                for link in design.all_links
            ],
        },
        "phase": str(r.workload.phase),
        "seq_len": r.workload.seq_len,
        "batch": r.workload.batch,
        "latency_cycles": r.latency_cycles,
        "latency_s": r.latency_s,
        "energy_pj": r.energy_pj,
        "edp_pj_cycles": r.edp,
        "macs": r.macs,
        "utilization": r.utilization,
        "matmul_utilization": r.matmul_utilization,
        "categories": _categories(r),
    }
    if ops:
        doc["ops"] = [
            {
                "name": o.name,
                "kind": str(o.kind),
                "op_class": str(o.op_class),
                "category": o.category,
                "where": o.where,
                "latency_cycles": o.latency_cycles,
                "energy_pj": o.energy_pj,
                "macs": o.macs,
                "dram_bytes": o.dram_bytes,
                "mapping": None
                if o.mapping is None
                else {
                    "tile_m": o.mapping.tile_m,
                    "tile_n": o.mapping.tile_n,
                    "tile_k": o.mapping.tile_k,
                    "order": list(o.mapping.order),
                },
                "conv_mapping": None
                if o.conv_mapping is None
                else {
                    "tiles": dict(zip(CONV_DIMS, o.conv_mapping.tiles, strict=True)),
                    "order": list(o.conv_mapping.order),
                },
            }
            for o in r.ops
        ]
    return doc


def compare_document(results: Sequence[ModelResult]) -> dict[str, Any]:
    first = results[0].latency_cycles
    return {
        "schema": "tstack.compare/1",
        "model": results[0].workload.model_name,
        "seq_len": results[0].workload.seq_len,
        "designs": [
            {
                "hardware": r.hardware.name,
                "latency_cycles": r.latency_cycles,
                "speedup": first / r.latency_cycles,
                "utilization": r.utilization,
                "matmul_utilization": r.matmul_utilization,
                "matmul_share": r.by_category()["matmul"] / r.latency_cycles,
                "energy_pj": r.energy_pj,
                "edp_pj_cycles": r.edp,
                "categories": _categories(r),
            }
            for r in results
        ],
    }


def sweep_document(axes: Sequence[Axis], points: Sequence[tuple[tuple[int, ...], ModelResult]]) -> dict[str, Any]:
    first = points[0][1]
    return {
        "schema": "tstack.sweep/1",
        "model": first.workload.model_name,
        "seq_len": first.workload.seq_len,
        "hardware": first.hardware.name,
        "axes": [{"name": a.name, "values": list(a.values)} for a in axes],
        "points": [
            {
                "values": list(values),
                "latency_cycles": r.latency_cycles,
                "utilization": r.utilization,
                "matmul_utilization": r.matmul_utilization,
                "energy_pj": r.energy_pj,
            }
            for values, r in points
        ],
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def simulate_table(r: ModelResult) -> Table:
    w = r.workload
    table = Table(title=f"{w.model_name} · {w.phase} · l = {w.seq_len} on {r.hardware.name}", title_justify="left")
    for col in ("category", "cycles", "share"):
        table.add_column(col, justify="left" if col == "category" else "right")
    total = r.latency_cycles
    for c, v in r.by_category().items():
        if v:
            table.add_row(c, f"{v:,.0f}", _pct(v / total))
    table.add_row("total", f"{total:,.0f}", "100%", style="bold")
    return table


def compare_table(results: Sequence[ModelResult]) -> Table:
    w = results[0].workload
    table = Table(title=f"{w.model_name} · l = {w.seq_len}: designs compared", title_justify="left")
    for col in ("design", "Mcycles", "speedup", "util.", "matmul util.", "matmul share", "energy mJ"):
        table.add_column(col, justify="left" if col == "design" else "right")
    first = results[0].latency_cycles
    for r in results:
        total = r.latency_cycles
        table.add_row(
            r.hardware.name,
            f"{total / 1e6:,.1f}",
            f"{first / total:.2f}x",
            _pct(r.utilization),
            _pct(r.matmul_utilization),
            _pct(r.by_category()["matmul"] / total),
            f"{r.energy_pj / 1e9:,.1f}",
        )
    return table


def ops_table(r: ModelResult) -> Table:
    """Every op: where it ran, its cycles, and its tiles (a matmul's m x n x k, or a convolution's seven)."""
    table = Table(title="ops", title_justify="left")
    for col in ("op", "where", "cycles", "tiles: m x n x k, or conv N K C P Q R S"):
        table.add_column(col, justify="right" if col == "cycles" else "left")
    for o in r.ops:
        tiles = f"{o.mapping.tile_m} x {o.mapping.tile_n} x {o.mapping.tile_k}" if o.mapping else ""
        if o.conv_mapping is not None:
            tiles = "conv " + " ".join(map(str, o.conv_mapping.tiles))
        table.add_row(o.name, o.where, f"{o.latency_cycles:,.0f}", tiles)
    return table


def summary_line(r: ModelResult) -> str:
    return (
        f"{r.latency_s * 1e3:.3f} ms at {r.hardware.clock_hz / 1e9:g} GHz · utilization {_pct(r.utilization)} "
        f"(matmuls alone {_pct(r.matmul_utilization)}) · energy {r.energy_pj / 1e9:,.2f} mJ · "
        f"EDP {r.edp:.3e} pJ·cycles"
    )


def sweep_table(axes: Sequence[Axis], points: Sequence[tuple[tuple[int, ...], ModelResult]]) -> Table:
    def label(axis: Axis, v: int) -> str:
        return str(v) if axis.name == "pe" else f"{v // 1024}K"

    first = points[0][1]
    if len(axes) == 2:
        a, b = axes
        table = Table(
            title=f"matmul utilization of {first.workload.model_name} (rows: {a.name}, columns: {b.name})",
            title_justify="left",
        )
        table.add_column(f"{a.name} \\ {b.name}")
        for v in b.values:
            table.add_column(label(b, v), justify="right")
        by = {values: r for values, r in points}
        for va in a.values:
            table.add_row(label(a, va), *(_pct(by[(va, vb)].matmul_utilization) for vb in b.values))
        return table
    table = Table(title=f"sweep of {first.hardware.name}", title_justify="left")
    for axis in axes:
        table.add_column(axis.name)
    for col in ("cycles", "utilization", "matmul util."):
        table.add_column(col, justify="right")
    for values, r in points:
        table.add_row(
            *(label(ax, v) for ax, v in zip(axes, values, strict=True)),
            f"{r.latency_cycles:,.0f}",
            _pct(r.utilization),
            _pct(r.matmul_utilization),
        )
    return table


def _mapper(r: MapperResult) -> dict[str, Any]:
    m = r.mapping
    return {
        "mapping": {"tile_m": m.tile_m, "tile_n": m.tile_n, "tile_k": m.tile_k, "order": list(m.order)},
        "latency_cycles": r.latency_cycles,
        "energy_pj": r.energy_pj,
        "edp": r.edp,
        "evaluated": r.evaluated,
    }


def _conv_mapper(r: ConvMapperResult) -> dict[str, Any]:
    return {
        "mapping": {"tiles": dict(zip(CONV_DIMS, r.mapping.tiles, strict=True)), "order": list(r.mapping.order)},
        "latency_cycles": r.latency_cycles,
        "energy_pj": r.energy_pj,
        "edp": r.edp,
        "evaluated": r.evaluated,
    }


def _best_tiles(r: OpMapping) -> str:
    if r.conv is not None:
        return f"conv {r.conv.mapping.summary()}"
    b = r.best.mapping
    return f"{b.tile_m} {b.tile_n} {b.tile_k}, {''.join(b.order)}"


def map_document(rows: Sequence[OpMapping]) -> dict[str, Any]:
    return {
        "schema": "tstack.map/1",
        "ops": [
            {
                "op": r.op_name,
                "m": r.shape.m,
                "n": r.shape.n,
                "k": r.shape.k,
                "batch": r.shape.batch,
                "best": _mapper(r.best),
                "heuristic": _mapper(r.heuristic),
                "direct_conv": None if r.conv is None else _conv_mapper(r.conv),
                "heuristic_edp_ratio": r.heuristic.edp / r.best_edp,
                "heuristic_latency_ratio": r.heuristic.latency_cycles / r.best_latency_cycles,
            }
            for r in rows
        ],
    }


def map_table(rows: Sequence[OpMapping]) -> Table:
    table = Table(
        title="best mappings (exhaustive, least EDP; convs as 7-loop convs where better) vs Gemmini's heuristic",
        title_justify="left",
    )
    for col in ("op", "M x N x K", "best tiles, order", "Mcycles", "heuristic EDP", "heuristic cycles"):
        table.add_column(col, justify="left" if col in ("op", "best tiles, order") else "right")
    for r in rows:
        table.add_row(
            r.op_name,
            f"{r.shape.m}x{r.shape.n}x{r.shape.k}" + (f" (x{r.shape.batch})" if r.shape.batch > 1 else ""),
            _best_tiles(r),
            f"{r.best_latency_cycles / 1e6:.3f}",
            f"{r.heuristic.edp / r.best_edp:.2f}x",
            f"{r.heuristic.latency_cycles / r.best_latency_cycles:.2f}x",
        )
    return table


def document_fields(stats: MapspaceStats) -> dict[str, Any]:
    """Fields a `tstack.mapspace/1` op entry carries beyond the original schema: which mapspace was sampled, the
    convolution (or null), and the best mapping (tiles by dim, DRAM order outermost first)."""
    best = stats.best
    if isinstance(best, NestResult):
        return {
            "mapspace": stats.mapspace,
            "conv": None,
            "best_mapping": best.nests.describe(0),
            "best_latency_cycles": best.latency_cycles,
            "best_energy_pj": best.energy_pj,
        }
    if isinstance(best, ConvMapperResult):
        tiles = dict(zip(CONV_DIMS, best.mapping.tiles, strict=True))
    else:
        tiles = {"m": best.mapping.tile_m, "n": best.mapping.tile_n, "k": best.mapping.tile_k}
    conv = stats.conv
    return {
        "mapspace": stats.mapspace,
        "conv": None
        if conv is None
        else {**dict(zip(CONV_DIMS, conv.bounds, strict=True)), "stride": conv.stride, "H": conv.h, "W": conv.w},
        "best_mapping": {"tiles": tiles, "order": list(best.mapping.order)},
        "best_latency_cycles": best.latency_cycles,
        "best_energy_pj": best.energy_pj,
    }


def mapspace_document(hardware: str, stats: Sequence[MapspaceStats], semantics: str = "tstack") -> dict[str, Any]:
    ops = []
    for st in stats:
        paper = PAPER_STATS.get(st.name)
        ops.append(
            {
                "name": st.name,
                "m": st.shape.m,
                "n": st.shape.n,
                "k": st.shape.k,
                "valid_mappings": st.valid_mappings,
                "samples": st.samples,
                "p10_relative_edp": st.p10,
                "within_3x_share": st.within_3x,
                "span": st.span,
                "best_edp": st.best.edp,
                "heuristic_edp": st.heuristic.edp,
                "paper": None if paper is None else {"p10_relative_edp": paper[0], "within_3x_share": paper[1]},
                **document_fields(st),
            }
        )
    return {"schema": "tstack.mapspace/1", "hardware": hardware, "semantics": semantics, "ops": ops}


def mapspace_table(stats: Sequence[MapspaceStats], semantics: str = "tstack") -> Table:
    table = Table(
        title=f"mapspace ({semantics}): {stats[0].samples:,} random valid mappings per op, EDP relative to the best",
        title_justify="left",
    )
    for col in ("op", "valid", "p10 (paper)", "within 3x (paper)", "span", "heuristic"):
        table.add_column(col, justify="left" if col == "op" else "right")
    for st in stats:
        paper = PAPER_STATS.get(st.name)
        p10 = f"{st.p10:.2f}" + (f" ({paper[0]})" if paper else "")
        within = _pct(st.within_3x) + (f" ({100 * paper[1]:.2f}%)" if paper else "")
        table.add_row(
            st.name, f"{st.valid_mappings:,}", p10, within, f"{st.span:.1e}", f"{st.heuristic.edp / st.best.edp:.2f}x"
        )
    return table


def _pair(p: PairLatency) -> dict[str, float | None]:
    def finite(x: float) -> float | None:
        return x if x != float("inf") else None

    return {
        "matmul_cycles": finite(p.matmul_cycles),
        "nonlinear_cycles": p.nonlinear_cycles,
        "total_cycles": finite(p.total_cycles),
    }


def fusion_document(results: Sequence[FusionResult]) -> dict[str, Any]:
    return {
        "schema": "tstack.fusion/1",
        "results": [
            {
                "pair": r.pair,
                "hardware": r.hardware,
                "accumulator_bytes": r.accumulator_bytes,
                "seq_len": r.seq_len,
                "non_fused": _pair(r.non_fused),
                "fused": _pair(r.fused),
                "change": None if r.fused.total_cycles == float("inf") else r.change,
            }
            for r in results
        ],
    }


def fusion_table(results: Sequence[FusionResult]) -> Table:
    table = Table(title="matmul + nonlinear op: non-fused vs fusion-optimized (Mcycles)", title_justify="left")
    for col in ("pair", "acc.", "l", "non-fused mm + nl", "fused mm + nl", "change"):
        table.add_column(col, justify="left" if col == "pair" else "right")
    for r in results:
        nf, f = r.non_fused, r.fused
        fused = (
            "does not fit"
            if f.total_cycles == float("inf")
            else (f"{f.matmul_cycles / 1e6:.2f} + {f.nonlinear_cycles / 1e6:.2f}")
        )
        change = "—" if f.total_cycles == float("inf") else f"{100 * r.change:+.0f}%"
        table.add_row(
            r.pair,
            f"{r.accumulator_bytes // 1024}K",
            str(r.seq_len),
            f"{nf.matmul_cycles / 1e6:.2f} + {nf.nonlinear_cycles / 1e6:.2f}",
            fused,
            change,
        )
    return table
