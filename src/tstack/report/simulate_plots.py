"""Figures of simulations: latency breakdown per design (the paper's Fig. 14) and sweep heat maps (Fig. 13)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tstack.mapping.mapspace import MapspaceStats
from tstack.report.plots import dress_mapspace_axes, save_figure
from tstack.simulate import CATEGORIES, ModelResult
from tstack.simulate.sweep import Axis

_COLORS = {
    "matmul": "#4c72b0",
    "softmax": "#dd8452",
    "layernorm": "#55a868",
    "gelu": "#c44e52",
    "resadd": "#8172b3",
    "dequant": "#937860",
    "other": "#8c8c8c",
}


def breakdown_plot(results: Sequence[ModelResult], path: Path) -> Path:
    """Stacked percentage of latency per category, one bar per design."""
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(results), 4))
    names = [r.hardware.name for r in results]
    bottom = np.zeros(len(results))
    for category in CATEGORIES:
        shares = np.array([100 * r.by_category()[category] / r.latency_cycles for r in results])
        if shares.any():
            ax.bar(names, shares, bottom=bottom, label=category, color=_COLORS[category])
            bottom += shares
    w = results[0].workload
    ax.set_ylabel("% of latency")
    ax.set_title(f"{w.model_name} · l = {w.seq_len}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(fig, path)


def sweep_heatmap(axes: Sequence[Axis], points: Sequence[tuple[tuple[int, ...], ModelResult]], path: Path) -> Path:
    """Matmul utilization over a two-axis grid (rows: the first axis)."""
    a, b = axes
    by = {values: r for values, r in points}
    grid = np.array([[100 * by[(va, vb)].matmul_utilization for vb in b.values] for va in a.values])
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100)
    ax.set_xticks(range(len(b.values)), [f"{v // 1024}K" if b.name != "pe" else str(v) for v in b.values])
    ax.set_yticks(range(len(a.values)), [f"{v // 1024}K" if a.name != "pe" else str(v) for v in a.values])
    ax.set_xlabel(b.name)
    ax.set_ylabel(a.name)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            ax.text(j, i, f"{grid[i, j]:.0f}%", ha="center", va="center", color="white")
    fig.colorbar(image, ax=ax, label="matmul utilization %")
    ax.set_title(f"{points[0][1].workload.model_name} on {points[0][1].hardware.name}")
    return save_figure(fig, path)


def mapspace_plot(stats: Sequence[MapspaceStats], path: Path, semantics: str = "tstack") -> Path:
    """Histogram of relative EDP (Fig. 18) and its CDF (Fig. 19), one series per op, under `semantics`."""
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4))
    top = max(s.span for s in stats)
    bins = np.logspace(0, np.log10(max(top, 10.0)), 60)
    for s in stats:
        hist.hist(s.relative_edp, bins=bins, histtype="step", label=s.name)
        ordered = np.sort(s.relative_edp)
        cdf.plot(ordered, np.arange(1, len(ordered) + 1) / len(ordered), label=f"{s.name} (p10 {s.p10:.1f})")
    dress_mapspace_axes(hist, cdf)
    fig.suptitle(f"{stats[0].samples:,} random valid mappings per op ({semantics} semantics)")
    return save_figure(fig, path)
