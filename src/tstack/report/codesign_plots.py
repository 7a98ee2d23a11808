"""The co-design Pareto front as a figure: EDP against area, perplexity as colour, one marker per strategy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tstack.codesign.search import CodesignResult
from tstack.fileio import write_atomic


@dataclass(frozen=True, slots=True)
class FrontSeries:
    """One strategy's front, as plotted (EDP in pJ x cycles, area in mm^2)."""

    label: str
    edp: tuple[float, ...]
    area_mm2: tuple[float, ...]
    perplexity: tuple[float, ...]


def front_series(results: Sequence[CodesignResult]) -> list[FrontSeries]:
    """The data of the figure, apart from drawing it."""
    out = []
    for r in results:
        front = r.front()
        out.append(FrontSeries(r.strategy.value, tuple(e.edp for e in front), tuple(e.area_mm2 for e in front),
                               tuple(e.perplexity for e in front)))  # fmt: skip
    return out


def plot_front(results: Sequence[CodesignResult], path: Path, area_budget_mm2: float) -> Path:
    """Write the fronts of `results` to `path` (PNG), atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    markers = ("o", "s", "^", "D")
    scatter = None
    for i, s in enumerate(front_series(results)):
        scatter = ax.scatter(s.area_mm2, s.edp, c=s.perplexity, cmap="viridis", marker=markers[i % len(markers)],
                             label=s.label, edgecolors="black", linewidths=0.5)  # fmt: skip
    ax.axvline(area_budget_mm2, color="grey", linestyle="--", linewidth=1, label="area budget")
    ax.set_xlabel("area (mm$^2$, predicted)")
    ax.set_ylabel("EDP (pJ x cycles, predicted)")
    ax.set_yscale("log")
    ax.set_title("co-design Pareto front (EDP, area, perplexity)")
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="perplexity (proxy surrogate)")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return write_atomic(path, buf.getvalue())
