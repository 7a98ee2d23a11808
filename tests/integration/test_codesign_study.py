"""The study's co-design experiment at --quick: the target design, the three strategies' optima and fronts,
consistent with one another and with the problem's constraints, rendered by the report's section; a rerun in the
same work folder resumes the searches and writes the same data. Run alone (no NAS experiment), it uses the proxy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tstack.hardware.area import design_area
from tstack.report.codesign_section import codesign_section
from tstack.spec.area import load_tables
from tstack.spec.hardware import load_hardware
from tstack.studies import codesign
from tstack.studies.base import Scale, StudyConfig

pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    work = tmp_path_factory.mktemp("codesign-study")
    return codesign.run(StudyConfig.make(Scale.QUICK), lambda _: None, work), work


def test_the_points_meet_the_problem_and_each_optimum_leads_its_front(quick: tuple[dict[str, Any], Path]) -> None:
    d, _ = quick
    budget, limit = d["area_budget_mm2"], d["perplexity_limit"]
    assert budget == pytest.approx(
        design_area(load_hardware("gemmini-ibert"), tables=load_tables()).total_mm2
    )  # 1x the target's area
    base, *optima = d["points"]
    assert base["label"] == "gemmini-ibert" and base["area_mm2"] == pytest.approx(budget)
    assert base["gains"] == {"latency": 1.0, "energy": 1.0, "edp": 1.0}
    assert [p["label"] for p in optima] == ["sequential optimum", "joint optimum", "alternating optimum"]
    assert d["perplexity_source"] == "proxy" and d["perplexity_limit"] == codesign.PROXY_LIMIT
    for p in optima:
        strategy = d["strategies"][p["label"].split()[0]]
        assert p["area_mm2"] <= budget and p["perplexity"] <= limit
        assert p["edp"] == min(f["edp"] for f in strategy["front"])  # the lowest-EDP candidate is on the front
        assert p["gains"]["edp"] == pytest.approx(base["edp"] / p["edp"])
        assert 0.0 <= strategy["hypervolume_fraction"] <= 1.0
        assert strategy["proposals"] == d["evaluations"] == StudyConfig.make(Scale.QUICK).settings.codesign_evaluations
    assert d["strategies"]["sequential"]["chosen_hardware"] is not None
    assert d["strategies"]["alternating"]["chosen_hardware"] is not None
    html = codesign_section(d)
    assert all(p["hardware_key"] in html for p in d["points"])


def test_a_rerun_resumes_the_searches_and_writes_the_same_data(quick: tuple[dict[str, Any], Path]) -> None:
    d, work = quick
    again = codesign.run(StudyConfig.make(Scale.QUICK), lambda _: None, work)
    assert again == d
