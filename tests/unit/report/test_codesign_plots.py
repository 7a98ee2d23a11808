"""The co-design figure is drawn from a real (small) search: its scatters hold exactly each front's points, its
markers the study's marked designs, and the PNG is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tstack.codesign import CodesignConfig, CodesignProblem, Strategy, run_codesign
from tstack.codesign.compare import base_point
from tstack.codesign.search import CodesignResult
from tstack.hardware.design import design_of
from tstack.hardware.types import Hardware
from tstack.nas.proxy import ProxyPerplexity
from tstack.nas.space import space_from_dict
from tstack.report.codesign_plots import front_figure, front_series, plot_front, study_front_figure
from tstack.spec.codesign import hardware_space_from_dict
from tstack.studies.codesign import front_points, point_row

pytest.importorskip("optuna")

TINY = {"name": "tiny", "layers": [1, 2], "heads": [2, 4], "d_model": [16, 32], "d_ff": [32, 64], "head_dim": 8,
        "seq_len": 16, "vocab_size": 300}  # fmt: skip
HW = {"name": "small", "parameters": {"pe_rows": [8, 16], "pe_cols": [8, 16], "scratchpad_kib": [32, 64],
                                      "l2_kib": [0, 256], "nonlinear_units": ["ibert", "none"]}}  # fmt: skip


def linear_area_mm2(hw: Hardware) -> float:
    """Stated for the test: 0.002 mm^2 per PE, 2e-6 mm^2 per on-chip byte, 0.05 mm^2 for the I-BERT units."""
    d = design_of(hw)
    sram_bytes = sum(level.capacity_bytes for level in d.memories[:-1])
    return 0.002 * hw.pe.rows * hw.pe.cols + 2e-6 * sram_bytes + (0.05 if hw.activations is not None else 0.0)


@pytest.fixture(scope="module")
def searched() -> tuple[CodesignProblem, list[CodesignResult]]:
    shapes = space_from_dict(TINY)
    problem = CodesignProblem(shapes, hardware_space_from_dict(HW), linear_area_mm2, ProxyPerplexity(shapes), 1.5, 30.0)
    results = [
        run_codesign(problem, CodesignConfig(strategy, evaluations=8, batch=4, seed=1), storage="memory")
        for strategy in (Strategy.SEQUENTIAL, Strategy.JOINT)
    ]
    return problem, results


def _offsets(fig: object) -> list[set[tuple[float, float]]]:
    ax = fig.axes[0]  # type: ignore[attr-defined]
    return [{(float(x), float(y)) for x, y in np.asarray(c.get_offsets())} for c in ax.collections]


def test_the_figure_holds_each_front_and_nothing_else(
    searched: tuple[CodesignProblem, list[CodesignResult]], tmp_path: Path
) -> None:
    problem, results = searched
    series = front_series(results)
    assert [s.label for s in series] == ["sequential", "joint"]
    fronts = [r.front() for r in results]
    assert all(fronts)  # each search found a feasible front
    for s, front in zip(series, fronts, strict=True):
        assert s.edp == tuple(e.edp for e in front) and s.perplexity == tuple(e.perplexity for e in front)
        # the front is non-dominated in (EDP, area, perplexity): no point is no worse in all three and better in one
        pts = list(zip(s.edp, s.area_mm2, s.perplexity, strict=True))
        assert not any(all(a <= b for a, b in zip(p, q, strict=True)) and p != q for p in pts for q in pts)
    fig = front_figure(series, problem.area_budget_mm2)
    expected = [{(e.area_mm2, e.edp) for e in front} for front in fronts]
    assert _offsets(fig) == expected
    png = plot_front(results, tmp_path / "front.png", problem.area_budget_mm2)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_study_figure_marks_the_base_and_each_optimum(
    searched: tuple[CodesignProblem, list[CodesignResult]],
) -> None:
    problem, results = searched
    base = base_point(problem)
    points = [point_row("base", base, base)]
    strategies = {}
    for r in results:
        best = r.best()
        assert best is not None
        points.append(point_row(f"{r.strategy.value} optimum", best, base))
        strategies[r.strategy.value] = {"front": front_points(r)}
    fig = study_front_figure({"area_budget_mm2": problem.area_budget_mm2, "points": points,
                              "strategies": strategies})  # fmt: skip
    ax = fig.axes[0]
    marked = {
        (float(np.asarray(line.get_xdata())[0]), float(np.asarray(line.get_ydata())[0]))
        for line in ax.lines
        if line.get_marker() == "x"
    }
    assert marked == {(p["area_mm2"], p["edp"]) for p in points}
    assert _offsets(fig) == [{(e.area_mm2, e.edp) for e in r.front()} for r in results]
    assert [t.get_text() for t in ax.texts] == ["base", "sequential optimum", "joint optimum"]
