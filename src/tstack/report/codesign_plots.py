"""The co-design Pareto front as a figure: EDP against area, perplexity as colour, one marker per strategy.

The data (`FrontSeries`, `Marker`) is taken apart from the drawing: from live search results (`front_series`, for
`tstack codesign --plot`) or from the study's JSON data (`study_front_data`, for the report), and `front_figure`
draws either. Every number drawn is predicted (EDP, area), and perplexity is measured (a trained supernet) or the
proxy surrogate, as the colour bar says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from tstack.codesign.search import CodesignResult
from tstack.report.plots import save_figure

_MARKERS = ("o", "s", "^", "D")


@dataclass(frozen=True, slots=True)
class FrontSeries:
    """One strategy's front, as plotted (EDP in pJ x cycles, area in mm^2)."""

    label: str
    edp: tuple[float, ...]
    area_mm2: tuple[float, ...]
    perplexity: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Marker:
    """A single labelled design drawn over the fronts (the base design, each strategy's optimum)."""

    label: str
    edp: float
    area_mm2: float


def front_series(results: Sequence[CodesignResult]) -> list[FrontSeries]:
    """The fronts of live search results, one series per result."""
    out = []
    for r in results:
        front = r.front()
        out.append(FrontSeries(r.strategy.value, tuple(e.edp for e in front), tuple(e.area_mm2 for e in front),
                               tuple(e.perplexity for e in front)))  # fmt: skip
    return out


def study_front_data(d: Mapping[str, Any]) -> tuple[list[FrontSeries], list[Marker]]:
    """The fronts and marked points of the study's co-design data (`tstack.studies.codesign`)."""
    series = []
    for name, s in d["strategies"].items():
        front = s["front"]
        series.append(FrontSeries(name, tuple(p["edp"] for p in front), tuple(p["area_mm2"] for p in front),
                                  tuple(p["perplexity"] for p in front)))  # fmt: skip
    markers = [Marker(p["label"], p["edp"], p["area_mm2"]) for p in d["points"]]
    return series, markers


def front_figure(
    series: Sequence[FrontSeries],
    area_budget_mm2: float,
    markers: Sequence[Marker] = (),
    perplexity_label: str = "perplexity (proxy surrogate)",
) -> Figure:
    """EDP (log) against area, one scatter per series coloured by perplexity, the budget as a line; the caller
    saves or closes the figure."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    scatter = None
    every = [p for s in series for p in s.perplexity]
    norm = Normalize(min(every), max(every)) if every else None  # one colour scale for every series
    for i, s in enumerate(series):
        scatter = ax.scatter(s.area_mm2, s.edp, c=s.perplexity, cmap="viridis", norm=norm,
                             marker=_MARKERS[i % len(_MARKERS)], label=f"{s.label} front", edgecolors="black",
                             linewidths=0.5)  # fmt: skip
    for m in markers:
        ax.plot([m.area_mm2], [m.edp], linestyle="none", marker="x", markersize=9, color="black")
        ax.annotate(m.label, (m.area_mm2, m.edp), textcoords="offset points", xytext=(5, 5), fontsize=7)
    ax.axvline(area_budget_mm2, color="grey", linestyle="--", linewidth=1, label="area budget")
    ax.set_xlabel("area (mm$^2$, predicted)")
    ax.set_ylabel("EDP (pJ x cycles, predicted)")
    ax.set_yscale("log")
    ax.set_title("co-design Pareto front (EDP, area, perplexity)")
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label=perplexity_label)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def study_perplexity_label(d: Mapping[str, Any]) -> str:
    """The colour bar's label: measured (the study's NAS supernet) or the proxy surrogate, as the data says."""
    if d.get("perplexity_source") == "measured":
        return "perplexity (measured, NAS supernet)"
    return "perplexity (proxy surrogate)"


def study_front_figure(d: dict[str, Any]) -> Figure:
    """The study's co-design figure from its data (a `report.study_plots` figure function)."""
    series, markers = study_front_data(d)
    return front_figure(series, float(d["area_budget_mm2"]), markers, perplexity_label=study_perplexity_label(d))


def plot_front(
    results: Sequence[CodesignResult],
    path: Path,
    area_budget_mm2: float,
    perplexity_label: str = "perplexity (proxy surrogate)",
) -> Path:
    """Write the fronts of `results` to `path` (PNG), atomically."""
    return save_figure(front_figure(front_series(results), area_budget_mm2, perplexity_label=perplexity_label), path)
