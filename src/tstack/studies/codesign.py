"""Co-design (issue 18): the accelerator and the model shape searched together, against the paper's sequence.

The paper's gains are found one layer at a time: memory sizes picked by hand (gemmini-ibert), then NAS on that fixed
design. This experiment runs `tstack codesign`'s two strategies at an equal budget of evaluations, on the study's NAS
shape space (`cpu`, or `paper` at the full scale) and the `gemmini` hardware space around the study's target design,
under the area of that design as the budget (what else the paper's silicon could have bought) and one perplexity
limit, and reports the joint optimum, the sequential one and the target design running the largest shape, each with
area, latency, energy, EDP and perplexity, plus both fronts for a figure.

What each number is: latency, energy and EDP are predicted by the cost model of record (each op at its best
mapping), with every design's per-access energies from the area model's component table, the target's included, so
its EDP here differs from the other experiments' (hand energies); area is predicted by the component area model
(`tstack.hardware.area`); perplexity is the proxy surrogate (`tstack.nas.proxy.ProxyPerplexity`), not a
measurement, at every scale. The searches live in Optuna journals in the work folder, so an interrupted study
resumes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tstack.codesign import CodesignConfig, CodesignProblem, Evaluation, Strategy, run_codesign
from tstack.codesign.compare import base_point, hypervolume_box
from tstack.codesign.search import CodesignResult
from tstack.hardware.area import design_area
from tstack.hardware.types import Hardware
from tstack.nas.proxy import ProxyPerplexity
from tstack.spec.area import load_tables
from tstack.spec.codesign import load_hardware_space
from tstack.spec.hardware import load_hardware
from tstack.spec.nas_space import load_space
from tstack.studies.base import Progress, Scale, StudyConfig, ratio

NAME = "codesign"
TITLE = "Co-design: accelerator and model shape, jointly vs in sequence"

HARDWARE_SPACE = "gemmini"
PERPLEXITY_LIMIT = 23.0  # `tstack codesign`'s default: the cpu space's largest shape is at 22.4 (proxy)
EVALUATIONS = {Scale.QUICK: 16, Scale.DEFAULT: 100, Scale.FULL: 300}
BATCH = 4


def area_mm2(hw: Hardware) -> float:
    """Predicted area in mm^2 (the component area model, its default table)."""
    return float(design_area(hw, tables=load_tables()).total_mm2)


def point_row(label: str, e: Evaluation, base: Evaluation) -> dict[str, Any]:
    return {
        "label": label,
        **e.to_dict(),
        "gains": {
            "latency": ratio(base.latency_cycles, e.latency_cycles),
            "energy": ratio(base.energy_pj, e.energy_pj),
            "edp": ratio(base.edp, e.edp),
        },
    }


def front_points(result: CodesignResult) -> list[dict[str, Any]]:
    keys = ("hardware_key", "arch", "edp", "area_mm2", "perplexity")
    return [{k: v for k, v in e.to_dict().items() if k in keys} for e in result.front()]


def run(config: StudyConfig, progress: Progress, work_dir: Path) -> dict[str, Any]:
    shapes = load_space(config.settings.nas_space)
    target = load_hardware(config.hw_target)
    # the preset's parameters around the study's target design (gemmini-ibert unless --hw-target says otherwise)
    hw_space = load_hardware_space(HARDWARE_SPACE, base=target)
    budget = area_mm2(target)
    problem = CodesignProblem(shapes, hw_space, area_mm2, ProxyPerplexity(shapes), budget, PERPLEXITY_LIMIT)
    evaluations = EVALUATIONS[config.scale]
    base = base_point(problem)
    box = hypervolume_box(problem, base)
    results: dict[Strategy, CodesignResult] = {}
    for strategy in (Strategy.SEQUENTIAL, Strategy.JOINT):
        progress(f"{strategy.value} search: {evaluations} evaluations on {shapes.name} x {hw_space.name}")
        search = CodesignConfig(strategy, evaluations, BATCH, seed=config.seed)
        results[strategy] = run_codesign(problem, search, storage=work_dir / "search.journal")
    strategies: dict[str, Any] = {}
    points = [point_row(config.hw_target, base, base)]
    for strategy, result in results.items():
        best = result.best()
        if best is not None:
            points.append(point_row(f"{strategy.value} optimum", best, base))
        strategies[strategy.value] = {
            "best": None if best is None else best.to_dict(),
            "front": front_points(result),
            "hypervolume_fraction": box.fraction(result.front()),
            "evaluated": result.n_evaluations,
            "proposals": result.n_proposals,
            "feasible": sum(result.feasible),
            "chosen_hardware": None if result.chosen_hardware is None else result.chosen_hardware.key,
        }
    return {
        "shape_space": shapes.name,
        "hardware_space": hw_space.name,
        "base": config.hw_target,
        "area_budget_mm2": budget,
        "perplexity_limit": PERPLEXITY_LIMIT,
        "evaluations": evaluations,
        "batch": BATCH,
        "sampler": "tpe",
        "seed": config.seed,
        "energies": problem.energies.value,
        "hypervolume_reference": list(box.reference),
        "hypervolume_floor_perplexity": box.floor_perplexity,
        "sources": {
            "latency_cycles": "predicted (cost model of record, each op at its best mapping)",
            "energy_pj": "predicted (cost model of record; per-access energies from the area model's table)",
            "area_mm2": "predicted (tstack.hardware.area, component table)",
            "perplexity": "proxy surrogate (ProxyPerplexity), not a measurement",
        },
        "points": points,
        "strategies": strategies,
    }
