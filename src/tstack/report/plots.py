"""Matplotlib figures of workload analyses (the paper's Figs. 4-6 and a per-class breakdown), and helpers the other plot
modules share."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tstack.fileio import safe_name, write_atomic
from tstack.units import to_giga
from tstack.workload.model_analysis import Analysis

_GROUP_COLORS = {
    "mha_proj": "#4c72b0",
    "mha_act": "#dd8452",
    "ffn_proj": "#55a868",
    "other": "#c44e52",
    "conv": "#4c72b0",
    "batchnorm": "#8172b3",
    "relu": "#937860",
}


_GROUP_LABELS = {"mha_proj": "MHA proj.", "mha_act": "MHA act-to-act", "ffn_proj": "FFN proj.", "relu": "ReLU"}


def save_figure(fig: Figure, path: Path) -> Path:
    """Render in memory, then write atomically with the usual permissions: an interrupted run never leaves a
    truncated PNG (or a stray temporary file) behind."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    finally:
        plt.close(fig)
    return write_atomic(path, buf.getvalue())


def dress_mapspace_axes(hist: Axes, cdf: Axes) -> None:
    """The axes of the mapspace figure, the same whether drawn from live statistics or a study's document: Fig. 18's
    histogram and Fig. 19's CDF of EDP relative to the best mapping, on a log scale, with a dotted mark at 3x."""
    for ax in (hist, cdf):
        ax.set_xscale("log")
        ax.set_xlabel("EDP relative to the best mapping")
    hist.set_ylabel("mappings")
    cdf.set_ylabel("fraction of mappings")
    cdf.axvline(3.0, color="grey", linestyle=":")
    cdf.legend(fontsize=7)


def _series_plot(analyses: Sequence[Analysis], metric: str, ylabel: str, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for a in analyses:
        seqs = [r.workload.seq_len for r in a.results]
        totals = [r.total for r in a.results]
        if metric == "flops":
            ys = [to_giga(t.flops) for t in totals]
        elif metric == "mops":
            ys = [to_giga(t.mops_bytes) for t in totals]
        else:
            ys = [t.arithmetic_intensity for t in totals]
        ax.plot(seqs, ys, marker="o", label=f"{a.model.name} ({a.phase})")
    ax.set_xscale("log", base=2)
    all_seqs = sorted({r.workload.seq_len for a in analyses for r in a.results})
    ax.set_xticks(all_seqs, [str(v) for v in all_seqs])
    ax.minorticks_off()
    if metric != "ai":
        ax.set_yscale("log")
    ax.set_xlabel("sequence length")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def _breakdown_plot(a: Analysis, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    seqs = [str(r.workload.seq_len) for r in a.results]
    groups = list(a.results[0].by_group())
    for ax, (field, label) in zip(axes, (("flops", "FLOPs"), ("mops_bytes", "MOPs")), strict=True):
        bottom = [0.0] * len(a.results)
        for g in groups:
            shares = []
            for r in a.results:
                whole = getattr(r.total, field)
                shares.append(100 * getattr(r.by_group()[g], field) / whole if whole else 0.0)
            ax.bar(seqs, shares, bottom=bottom, label=_GROUP_LABELS.get(g, g), color=_GROUP_COLORS.get(g))
            bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
        ax.set_title(f"{label} by operator class")
        ax.set_xlabel("sequence length")
    axes[0].set_ylabel("% of total")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"{a.model.name} · {a.phase} · {a.convention}")
    return save_figure(fig, path)


def analysis_plots(analyses: Sequence[Analysis], out_dir: Path) -> list[Path]:
    """FLOPs, MOPs and arithmetic intensity against sequence length (Figs. 4-6) and a breakdown per model."""
    written: list[Path] = []
    series = [a for a in analyses if a.fused is None]
    if series:
        written.append(_series_plot(series, "flops", "GFLOPs", "FLOPs (Fig. 4)", out_dir / "flops.png"))
        written.append(
            _series_plot(series, "mops", "GMOPs (bytes)", "Memory operations (Fig. 5)", out_dir / "mops.png")
        )
        written.append(
            _series_plot(
                series,
                "ai",
                "FLOPs / byte",
                "Arithmetic intensity (Fig. 6)",
                out_dir / "arithmetic_intensity.png",
            )
        )
    for a in analyses:
        written.append(_breakdown_plot(a, out_dir / f"breakdown_{safe_name(a.model.name)}.png"))
    return written
