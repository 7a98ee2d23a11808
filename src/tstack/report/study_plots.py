"""The study's figures, drawn from its JSON data (never from live objects), so a cached study re-renders as is.

Each figure is saved as PNG (embedded in the HTML report) and SVG (for papers and slides), both atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, NullFormatter

from tstack.fileio import write_atomic
from tstack.report.codesign_plots import study_front_figure
from tstack.report.plots import dress_mapspace_axes, save_figure

_GROUP_LABELS = {"mha_proj": "MHA projections", "mha_act": "MHA act-to-act", "ffn_proj": "FFN", "other": "Other"}
_PAPER_STYLE: dict[str, Any] = {"linestyle": "none", "marker": "x", "markersize": 7, "color": "black"}


@dataclass(frozen=True, slots=True)
class FigureFile:
    name: str
    experiment: str
    title: str
    caption: str
    png: Path
    svg: Path


def _save(fig: Figure, directory: Path, name: str) -> tuple[Path, Path]:
    import io

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    svg = directory / f"{name}.svg"
    write_atomic(svg, buf.getvalue())
    png = save_figure(fig, directory / f"{name}.png")  # closes the figure
    return png, svg


def _workload_series(d: dict[str, Any]) -> Figure:
    fig, (ax_f, ax_ai) = plt.subplots(1, 2, figsize=(11, 4))
    for s in d["series"]:
        seqs = [r["seq"] for r in s["rows"]]
        (line,) = ax_f.plot(seqs, [r["gflops"] for r in s["rows"]], marker="o", label=f"{s['model']} ({s['phase']})")
        ax_ai.plot(seqs, [r["ai"] for r in s["rows"]], marker="o", color=line.get_color(), label=s["model"])
        paper_pts = [(r["seq"], r["paper_gflops"]) for r in s["rows"] if r.get("paper_gflops") is not None]
        if paper_pts:
            ax_f.plot(*zip(*paper_pts, strict=True), **_PAPER_STYLE)
        paper_ai = [(r["seq"], r["paper_ai"]) for r in s["rows"] if r.get("paper_ai") is not None]
        if paper_ai:
            ax_ai.plot(*zip(*paper_ai, strict=True), **_PAPER_STYLE)
    for ax in (ax_f, ax_ai):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length l")
    ax_f.set_yscale("log")
    ax_f.set_ylabel("GFLOPs (whole model)")
    ax_ai.set_ylabel("arithmetic intensity (FLOPs / byte)")
    ax_f.plot([], [], label="paper (Figs. 4, 6)", **_PAPER_STYLE)
    ax_f.legend(fontsize=8)
    return fig


def _workload_shares(d: dict[str, Any]) -> Figure:
    model = d["series"][0]
    fig, (ax_f, ax_m) = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = [str(r["seq"]) for r in model["rows"]]
    for ax, key in ((ax_f, "flops_share"), (ax_m, "mops_share")):
        bottom = np.zeros(len(labels))
        for g, name in _GROUP_LABELS.items():
            vals = np.array([100 * r["groups"].get(g, {}).get(key, 0.0) for r in model["rows"]])
            ax.bar(labels, vals, bottom=bottom, label=name)
            bottom += vals
        ax.set_xlabel("sequence length l")
        ax.set_ylabel(f"% of {'FLOPs' if key == 'flops_share' else 'memory operations'}")
    ax_f.set_title(model["model"], fontsize=9)
    ax_m.legend(fontsize=8, loc="lower left")
    return fig


def _profile_shares(d: dict[str, Any]) -> Figure:
    models = list(dict.fromkeys(r["model"] for r in d["runs"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4), squeeze=False)
    classes = list(dict.fromkeys(c for r in d["runs"] for c, v in r["shares"].items() if v > 0))
    palette = [plt.get_cmap("tab10")(i % 10) for i in range(len(classes))]
    colors = dict(zip(classes, palette, strict=True))
    for ax, m in zip(axes[0], models, strict=True):
        runs = [r for r in d["runs"] if r["model"] == m]
        labels = [str(r["seq"]) for r in runs]
        bottom = np.zeros(len(runs))
        for c in classes:
            vals = np.array([100 * r["shares"].get(c, 0.0) for r in runs])
            ax.bar(labels, vals, bottom=bottom, label=c, color=colors[c])
            bottom += vals
        ax.set_title(f"{m} ({runs[0]['phase']})", fontsize=9)
        ax.set_xlabel("sequence length l")
        ax.set_ylabel("% of profiled time")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return fig


def _profile_normalized(d: dict[str, Any]) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in dict.fromkeys(r["model"] for r in d["runs"]):
        runs = [r for r in d["runs"] if r["model"] == m]
        (line,) = ax.plot([r["seq"] for r in runs], [r["normalized_latency"] for r in runs], marker="o", label=m)
        pts = [(r["seq"], r["paper_normalized_latency"]) for r in runs if r["paper_normalized_latency"]]
        if pts:
            ax.plot(*zip(*pts, strict=True), **{**_PAPER_STYLE, "color": line.get_color()})
    ax.plot([], [], label="paper (Fig. 9, Xeon Gold 6242)", **_PAPER_STYLE)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length l")
    ax.set_ylabel("latency / BERT-Base at l = 128")
    ax.legend(fontsize=8)
    return fig


def _gemmini_breakdown(d: dict[str, Any]) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    designs = d["designs"]
    cats = list(dict.fromkeys(c for x in designs for c, v in x["category_cycles"].items() if v > 0))
    base = designs[0]["latency_cycles"]
    bottom = np.zeros(len(designs))
    for c in cats:
        vals = np.array([x["category_cycles"].get(c, 0.0) / base for x in designs])
        ax.bar([x["hardware"] for x in designs], vals, bottom=bottom, label=c)
        bottom += vals
    for i, x in enumerate(designs):
        ax.text(i, bottom[i] * 1.02, f"{base / x['latency_cycles']:.1f}x", ha="center", fontsize=9)
    ax.set_ylabel("latency, normalized to the baseline")
    ax.set_title(f"{d['model']} at l = {d['seq']} (Fig. 14)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def _gemmini_grid(d: dict[str, Any]) -> Figure:
    cells = d["memory_grid"]
    accs = sorted({c["accumulator_kb"] for c in cells})
    spads = sorted({c["scratchpad_kb"] for c in cells})
    grid = np.full((len(accs), len(spads)), np.nan)
    for c in cells:
        grid[accs.index(c["accumulator_kb"]), spads.index(c["scratchpad_kb"])] = 100 * c["matmul_utilization"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, origin="lower")
    paper13 = d["paper"]["fig13"]
    for i, a in enumerate(accs):
        for j, s in enumerate(spads):
            p = paper13.get(str(a))
            extra = f"\n(paper {p[(64, 128, 256).index(s)]})" if p and s in (64, 128, 256) else ""
            ax.text(j, i, f"{grid[i, j]:.0f}%{extra}", ha="center", va="center", color="white", fontsize=8)
    ax.set_xticks(range(len(spads)), [f"{s} kB" for s in spads])
    ax.set_yticks(range(len(accs)), [f"{a} kB" for a in accs])
    ax.set_xlabel("scratchpad")
    ax.set_ylabel("accumulator")
    fig.colorbar(image, ax=ax, label="matmul utilization %")
    return fig


#: how each configuration of the sensitivity view is drawn and named
SENSITIVITY_BASES = {
    "predicted": ("tab:orange", "presets (host and DMA predicted)"),
    "calibrated": ("tab:blue", "-calibrated presets (host and DMA fitted to the paper)"),
}


@dataclass(frozen=True, slots=True)
class SensitivityBar:
    """One bar of the tornado: an input moved over its range around one configuration."""

    label: str
    kind: str
    base: str
    low: float
    high: float
    low_label: str
    high_label: str
    reference: float


def sensitivity_bars(d: dict[str, Any]) -> list[SensitivityBar]:
    """The tornado's bars from the gemmini experiment's `sensitivity` data, widest row first (no drawing)."""
    s = d["sensitivity"]
    out: list[tuple[float, int, SensitivityBar]] = []
    for i, row in enumerate(s["rows"]):
        widest = max(b["max_speedup"] - b["min_speedup"] for b in row["bases"].values())
        for name, b in row["bases"].items():
            ref = s["bases"][name]["speedup"]
            points = [*b["points"], {"speedup": ref, "label": b["reference_label"]}]
            lo = min(points, key=lambda p: p["speedup"])
            hi = max(points, key=lambda p: p["speedup"])
            bar = SensitivityBar(
                row["label"], row["kind"], name, lo["speedup"], hi["speedup"], lo["label"], hi["label"], ref
            )
            out.append((-widest, i, bar))
    return [bar for *_, bar in sorted(out, key=lambda t: (t[0], t[1]))]


def _gemmini_sensitivity(d: dict[str, Any]) -> Figure:
    bars = sensitivity_bars(d)
    labels = list(dict.fromkeys((b.label, b.kind) for b in bars))
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(labels) + 1.6))
    offsets = {"predicted": 0.18, "calibrated": -0.18}
    for b in bars:
        y = len(labels) - 1 - labels.index((b.label, b.kind)) + offsets.get(b.base, 0.0)
        color = SENSITIVITY_BASES.get(b.base, ("grey", b.base))[0]
        ax.barh(y, max(b.high - b.low, 1e-9), left=b.low, height=0.32, color=color, alpha=0.8)
        ax.plot([b.low, b.high], [y, y], "|", color=color, markersize=9)
        flat = b.high - b.low < 1e-4 * b.high
        low_text = "no change over the range" if flat else b.low_label
        ax.annotate(low_text, (b.low, y), textcoords="offset points", xytext=(-3, -3), ha="right", fontsize=6)
        if not flat:
            ax.annotate(b.high_label, (b.high, y), textcoords="offset points", xytext=(3, -3), fontsize=6)
    for name, base in d["sensitivity"]["bases"].items():
        color, text = SENSITIVITY_BASES.get(name, ("grey", name))
        ax.axvline(base["speedup"], color=color, linestyle="--", linewidth=1, label=f"{text}: {base['speedup']:.1f}x")
    paper = d["paper"]["speedup_latency"]
    ax.axvline(paper, color="black", linestyle=":", linewidth=1.2, label=f"paper: {paper:g}x")
    ax.set_yticks(range(len(labels)), [f"{lab}\n[{kind}]" for lab, kind in reversed(labels)], fontsize=7)
    ax.set_xscale("log")
    ends = [b.low for b in bars] + [b.high for b in bars] + [d["paper"]["speedup_latency"]]
    lo, hi = min(ends) / 1.3, max(ends) * 1.3  # room for the labels at the bars' ends
    ax.set_xlim(lo, hi)
    ticks = [t for t in (1, 2, 3, 5, 10, 15, 20, 30, 40, 50, 70, 100, 150, 200, 300, 500) if lo <= t <= hi]
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"co-designed speedup, {d['sensitivity']['baseline']} -> {d['sensitivity']['target']} (log scale)")
    ax.set_title(f"{d['model']} at l = {d['seq']}: each input over its range, one at a time", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def _mapspace(d: dict[str, Any]) -> Figure:
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4))
    for s in d["mapspace"]:
        edges = np.array(s["histogram"]["edges"])
        hist.stairs(s["histogram"]["counts"], edges, label=s["op"])
        cdf.plot(s["cdf"]["relative_edp"], s["cdf"]["fraction"], label=f"{s['op']} (p10 {s['p10']:.1f})")
    dress_mapspace_axes(hist, cdf)
    hist.legend(fontsize=7)
    return fig


def _with_readings(d: dict[str, Any]) -> list[dict[str, Any]]:
    """Mapspace ops that have the paper's statistics and at least one reading under Timeloop's model."""
    return [s for s in d.get("mapspace", []) if s.get("paper_p10") and any("p10" in r for r in s.get("readings", []))]


def _mapspace_readings(d: dict[str, Any]) -> Figure:
    """Each reading's (p10, share within 3x) beside the paper's point and its +-30% box: where the paper lies."""
    ops = _with_readings(d)
    fig, axes = plt.subplots(1, len(ops), figsize=(5.2 * len(ops), 4.2), squeeze=False)
    for ax, s in zip(axes[0], ops, strict=True):
        p10, share = s["paper_p10"], 100 * s["paper_within_3x"]
        ax.add_patch(Rectangle((0.7 * p10, 0.7 * share), 0.6 * p10, 0.6 * share, color="tab:green", alpha=0.15, lw=0))
        ax.plot([p10], [share], "g*", markersize=14, label="paper (+-30% box)")
        points = [("tstack", s["p10"], s["within_3x"])] + [
            (r["semantics"], r["p10"], r["within_3x"]) for r in s["readings"] if "p10" in r
        ]
        for name, x, y in points:
            ax.plot([x], [100 * max(y, 1e-4)], "o", label=name)
            ax.annotate(name, (x, 100 * max(y, 1e-4)), textcoords="offset points", xytext=(5, 4), fontsize=7)
        timeloop = s.get("timeloop") or {}
        if timeloop:  # real Timeloop on Gemmini's files, with one bootstrap standard error, and tstack's reading
            m, pr = timeloop["measured"], timeloop["predicted"]
            ax.errorbar(
                [m["p10"]],
                [100 * m["within_3x"]],
                xerr=[m["p10_stderr"]],
                yerr=[100 * m["within_3x_stderr"]],
                fmt="kD",
                markersize=6,
                label="real Timeloop (measured)",
            )
            if "p10" in pr:
                ax.plot([pr["p10"]], [100 * pr["within_3x"]], "r+", markersize=12, label="timeloop-ids (predicted)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers, no crowded minor labels
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("10th-percentile EDP relative to the best")
        ax.set_ylabel("% of mappings within 3x of the best")
        ax.set_title(s["op"], fontsize=9)
    axes[0][0].legend(fontsize=7)
    return fig


def _fusion(d: dict[str, Any]) -> Figure:
    rows = d["fusion"]
    fig, ax = plt.subplots(figsize=(8, 4))
    labels, mm, nl = [], [], []
    for r in rows:
        for kind in ("non_fused", "fused"):
            cycles = r[f"{kind}_cycles"]
            if cycles[0] is None or not np.isfinite(cycles[0]):  # the fused tiling did not fit: no bar
                continue
            labels.append(f"{r['pair']}\nl={r['seq']} {r['accumulator_kb']} kB {kind.replace('_', '-')}")
            mm.append(cycles[0] / 1e6)
            nl.append(cycles[1] / 1e6)
    x = np.arange(len(labels))
    ax.bar(x, mm, label="matmul")
    ax.bar(x, nl, bottom=mm, label="Softmax / LayerNorm")
    ax.set_xticks(x, labels, fontsize=6, rotation=60, ha="right")
    ax.set_ylabel("latency (10^6 cycles)")
    ax.legend(fontsize=8)
    return fig


def _nas_front(d: dict[str, Any]) -> Figure:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    pts = d["points"]
    base = d["baseline"]
    for ax, key, label in zip(
        axes,
        ("edp", "latency_cycles", "energy_pj"),
        ("EDP / baseline", "latency / baseline", "energy / baseline"),
        strict=True,
    ):
        xs = np.array([p[key] for p in pts]) / base[key]
        ys = [p["perplexity"] for p in pts]
        ax.scatter(xs, ys, s=10, alpha=0.5, label="evaluated candidates")
        front = sorted((p for p in pts if p.get("pareto")), key=lambda p: p[key])
        ax.plot([p[key] / base[key] for p in front], [p["perplexity"] for p in front], "r.-", label="Pareto front")
        ax.plot([1.0], [base["perplexity"]], "kx", markersize=9, label="baseline")
        for tol, style in ((0.1, ":"), (1.0, "--")):
            ax.axhline(base["perplexity"] + tol, color="grey", linestyle=style, label=f"+{tol:g} perplexity")
        ax.set_xlabel(label)
        ax.set_ylabel("held-out perplexity")
    axes[0].legend(fontsize=7)
    return fig


def _cumulative(d: dict[str, Any]) -> Figure:
    factors = d["factors"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    metrics = ("latency", "energy", "edp")
    x = np.arange(len(factors) + 1)
    width = 0.26
    for k, metric in enumerate(metrics):
        vals = [f["gains"].get(metric) or np.nan for f in factors] + [d["end_to_end"].get(metric) or np.nan]
        ax.bar(x + (k - 1) * width, vals, width, label=metric)
    ax.set_xticks(x, [f["step"] for f in factors] + ["end to end"], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("gain (x, higher is better)")
    ax.axhline(1, color="grey", linewidth=0.8)
    ax.legend(fontsize=8)
    return fig


_FIGURES: tuple[tuple[str, str, str, str, Callable[[dict[str, Any]], Figure]], ...] = (
    ("workload_series", "workload", "FLOPs and arithmetic intensity vs sequence length", "Figs. 4-6", _workload_series),
    (
        "workload_shares",
        "workload",
        "Where the FLOPs and bytes are, per op class",
        "Table 3 / Fig. 5",
        _workload_shares,
    ),
    ("profile_shares", "profile", "Measured CPU time per op class", "Figs. 7-8", _profile_shares),
    ("profile_normalized", "profile", "Measured latency, normalized", "Fig. 9", _profile_normalized),
    (
        "gemmini_breakdown",
        "gemmini",
        "Latency breakdown per design (host costs predicted from the kernels' code, not fitted to Fig. 14)",
        "Fig. 14",
        _gemmini_breakdown,
    ),
    (
        "gemmini_grid",
        "gemmini",
        "Matmul utilization vs memory sizes (DMA bandwidth predicted; paper's cells in brackets)",
        "Fig. 13",
        _gemmini_grid,
    ),
    (
        "gemmini_sensitivity",
        "gemmini",
        "Sensitivity of the speedup: each predicted, calibrated, assumed or optional input over its range",
        "39.6x",
        _gemmini_sensitivity,
    ),
    ("mapspace", "mapping", "EDP over random valid mappings", "Figs. 18-19", _mapspace),
    (
        "mapspace_readings",
        "mapping",
        "Mapspace statistics under each reading of the mapspace, against the paper's",
        "Fig. 19",
        _mapspace_readings,
    ),
    ("fusion", "mapping", "Fused vs non-fused matmul + nonlinear pairs", "Figs. 21-22", _fusion),
    ("nas_front", "nas", "NAS: perplexity vs hardware cost", "Figs. 25-26", _nas_front),
    (
        "codesign_front",
        "codesign",
        "Co-design: sequential, joint and alternating fronts in EDP, area and perplexity",
        "88.7x (found one layer at a time)",
        study_front_figure,
    ),
    ("cumulative", "cumulative", "What each optimization bought", "88.7x", _cumulative),
)


def _usable(experiment: str, name: str, data: dict[str, Any] | None) -> bool:
    if not data or "error" in data:
        return False
    needs = {
        "gemmini_grid": "memory_grid",
        "fusion": "fusion",
        "mapspace": "mapspace",
        "nas_front": "points",
        "codesign_front": "strategies",
    }
    if name == "mapspace_readings":
        return bool(_with_readings(data))
    if name == "gemmini_sensitivity":
        return bool((data.get("sensitivity") or {}).get("rows"))
    key = needs.get(name)
    return key is None or bool(data.get(key))


def figure_sources(doc: dict[str, Any]) -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
    for name, experiment, title, paper_ref, _ in _FIGURES:
        data = doc["cumulative"] if experiment == "cumulative" else doc["experiments"].get(experiment, {}).get("data")
        if experiment == "cumulative" and not (data or {}).get("factors"):
            continue
        if _usable(experiment, name, data):
            assert data is not None
            yield name, experiment, title, paper_ref, data


def render_figures(doc: dict[str, Any], directory: Path) -> list[FigureFile]:
    draw = {name: fn for name, *_, fn in _FIGURES}
    out = []
    for name, experiment, title, paper_ref, data in figure_sources(doc):
        png, svg = _save(draw[name](data), directory, name)
        out.append(FigureFile(name, experiment, title, f"cf. the paper's {paper_ref}", png, svg))
    return out
