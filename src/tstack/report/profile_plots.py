"""Matplotlib figures of measured profiles: normalized latency against sequence length (the paper's Fig. 9) and
per model the share of each op class (Figs. 7-8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from tstack.fileio import safe_name
from tstack.report.plots import save_figure
from tstack.report.profile_doc import LABELS

if TYPE_CHECKING:
    from tstack.profile.measure import ProfileResult

_COLORS = {
    "mha_proj": "#4c72b0",
    "mha_act": "#dd8452",
    "ffn_proj": "#55a868",
    "softmax": "#c44e52",
    "norm": "#8172b3",
    "activation": "#937860",
    "residual": "#da8bc3",
    "data_movement": "#8c8c8c",
    "other": "#ccb974",
    "unclassified": "#000000",
}


def profile_plots(runs: Sequence[Sequence[ProfileResult]], out_dir: Path) -> list[Path]:
    """Normalized latency against sequence length (the paper's Fig. 9) and per model a stacked share bar chart
    per class against sequence length (Figs. 7-8). Files are written atomically."""
    from tstack.profile import MEASURED_CLASSES

    written = []
    base = runs[0][0].wall.min_s
    fig, ax = plt.subplots(figsize=(6, 4))
    for results in runs:
        xs = [r.seq_len for r in results]
        ys = [r.wall.min_s / base for r in results]
        ax.plot(xs, ys, marker="o", label=f"{results[0].model.name} ({results[0].phase.value})")
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.3g}", (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length")
    first = runs[0][0]
    ax.set_ylabel(f"latency / {first.model.name} at l={first.seq_len}")
    ax.set_title(f"Normalized latency ({first.device}, {first.threads} threads)")
    ax.legend(fontsize=8)
    written.append(save_figure(fig, out_dir / "profile_normalized_latency.png"))
    for results in runs:
        fig, ax = plt.subplots(figsize=(6, 4))
        labels = [str(r.seq_len) for r in results]
        bottom = [0.0] * len(results)
        for cls in MEASURED_CLASSES:
            vals = [100.0 * r.shares()[cls] for r in results]
            if not any(vals):
                continue
            ax.bar(labels, vals, bottom=bottom, label=LABELS[cls], color=_COLORS[cls])
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        m = results[0]
        ax.set_xlabel("sequence length")
        ax.set_ylabel("% of profiled time")
        ax.set_title(f"{m.model.name} ({m.phase.value}) latency breakdown")
        ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
        name = safe_name(m.model.name)
        written.append(save_figure(fig, out_dir / f"profile_breakdown_{name}_{m.phase.value}.png"))
    return written
