"""Figures of a NAS study: latency and energy vs perplexity (the paper's Fig. 25) and normalized EDP vs perplexity
(Fig. 26), with the baseline and its +0.1 / +1 perplexity lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from tstack.nas.pareto import PAPER_TOLERANCES, Point, pareto_mask
from tstack.report.plots import save_figure

_TOL_STYLE = {0.1: ("#2a9d8f", "--"), 1.0: ("#e76f51", ":")}


def _panel(
    ax: Axes, xs: Sequence[float], ppl: Sequence[float], front: Sequence[bool], base: tuple[float, float], xlabel: str
) -> None:
    ax.scatter(xs, ppl, s=12, color="#8da0cb", alpha=0.6, label="candidates", zorder=2)
    fx = sorted((x, y) for x, y, f in zip(xs, ppl, front, strict=True) if f)
    if fx:
        ax.plot([x for x, _ in fx], [y for _, y in fx], "o-", color="#264653", ms=4, lw=1.2, label="Pareto front")
    ax.scatter([base[0]], [base[1]], marker="x", s=80, color="black", label="baseline", zorder=4)
    for tol in PAPER_TOLERANCES:
        color, style = _TOL_STYLE[tol]
        ax.axhline(base[1] + tol, color=color, ls=style, lw=1, label=f"+{tol:g} perplexity")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("perplexity")
    ax.grid(True, alpha=0.3)


def nas_plots(
    points: Sequence[Point], baseline: Point, folder: Path, title: str, baseline_perplexity: float | None = None
) -> list[Path]:
    """Write fig25 (latency, energy vs perplexity) and fig26 (EDP / baseline EDP vs perplexity) PNGs to `folder`."""
    ppl = [p.perplexity for p in points]
    front = [bool(m) for m in pareto_mask([(p.perplexity, p.edp) for p in points])] if points else []
    base_ppl = baseline.perplexity if baseline_perplexity is None else baseline_perplexity
    written = []

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    lat_front = [bool(m) for m in pareto_mask([(p.perplexity, p.latency_cycles) for p in points])] if points else []
    en_front = [bool(m) for m in pareto_mask([(p.perplexity, p.energy_pj) for p in points])] if points else []
    _panel(left, [p.latency_cycles / 1e6 for p in points], ppl, lat_front,
           (baseline.latency_cycles / 1e6, base_ppl), "latency (10⁶ cycles)")  # fmt: skip
    _panel(right, [p.energy_pj / 1e6 for p in points], ppl, en_front,
           (baseline.energy_pj / 1e6, base_ppl), "energy (µJ)")  # fmt: skip
    left.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"NAS: latency and energy vs perplexity (Fig. 25) — {title}")
    written.append(save_figure(fig, folder / "nas_fig25_latency_energy.png"))

    fig, ax = plt.subplots(figsize=(6, 4.2))
    _panel(ax, [p.edp / baseline.edp for p in points], ppl, front, (1.0, base_ppl), "EDP normalized to the baseline")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"NAS: perplexity vs normalized EDP (Fig. 26) — {title}", fontsize=10)
    written.append(save_figure(fig, folder / "nas_fig26_edp.png"))
    return written
