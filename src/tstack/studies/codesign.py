"""Co-design (issue 18): the accelerator and the model shape searched together, against the paper's sequence.

The paper's gains are found one layer at a time: memory sizes picked by hand (gemmini-ibert), then NAS on that fixed
design. This experiment runs `tstack codesign`'s three strategies (sequential, the paper's order; joint; alternating,
two rounds) at an equal budget of evaluations, on the study's NAS shape space (`cpu`, or `paper` at the full scale)
and the `gemmini` hardware space around the study's target design, under the area of that design as the budget (what
else the paper's silicon could have bought) and one perplexity limit, and reports each strategy's optimum and the
target design running the largest shape, each with area, latency, energy, EDP and perplexity, plus every front for a
figure.

Perplexity is **measured** when the study's NAS experiment finished (ran or came from the cache) in this study: the
held-out perplexity of each shape's sub-network of the supernet that experiment trained (`USES = ("nas",)`: the
runner passes its work folder; `SupernetObjective`, the held-out tokens of the NAS experiment's own evaluation), and
the limit is `tstack codesign`'s rule with a supernet, 1.03 x the largest shape's measured perplexity
(`tstack.codesign.evaluate.relative_perplexity_limit`). The cache key holds a digest of the supernet's weights, so a
retrained, different supernet re-runs this experiment. When the NAS experiment was left out (`--only codesign`),
failed, or left no readable checkpoint, perplexity is the proxy surrogate (`tstack.nas.proxy.ProxyPerplexity`, a
power law in the parameter count, not a measurement) with `tstack codesign`'s proxy limit 23, and the data says why
(`perplexity_source`, `sources.perplexity`).

What each other number is: latency, energy and EDP are predicted by the cost model of record (each op at its best
mapping), with every design's per-access energies from the area model's component table, the target's included, so
its EDP here differs from the other experiments' (hand energies); area is predicted by the component area model
(`tstack.hardware.area`). The searches live in Optuna journals in the work folder, so an interrupted study resumes
them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tstack.codesign import CodesignConfig, CodesignProblem, Evaluation, Strategy, run_codesign
from tstack.codesign.compare import base_point, hypervolume_box
from tstack.codesign.evaluate import SUPERNET_FACTOR, PerplexityModel, relative_perplexity_limit
from tstack.codesign.search import CodesignResult
from tstack.errors import TstackError
from tstack.hardware.area import design_area
from tstack.hardware.types import Hardware
from tstack.nas.proxy import ProxyPerplexity
from tstack.nas.space import SearchSpace
from tstack.spec.area import load_tables
from tstack.spec.codesign import load_hardware_space
from tstack.spec.hardware import load_hardware
from tstack.spec.nas_space import load_space
from tstack.studies.base import Progress, StudyConfig, Upstream, ratio
from tstack.studies.nas import SUPERNET_DIR

NAME = "codesign"
TITLE = "Co-design: accelerator and model shape, jointly vs in sequence vs alternating"
USES = ("nas",)  # its trained supernet measures perplexity (module docstring)

HARDWARE_SPACE = "gemmini"
PROXY_LIMIT = 23.0  # `tstack codesign`'s proxy default: the cpu space's largest shape is at 22.4 (proxy)
STRATEGIES = (Strategy.SEQUENTIAL, Strategy.JOINT, Strategy.ALTERNATING)
ROUNDS = 2  # of the alternating strategy (`tstack codesign`'s default)
BATCH = 4


@dataclass(frozen=True)
class Perplexity:
    """The perplexity objective of the searches and what the study says of it."""

    model: PerplexityModel
    shapes: SearchSpace
    limit: float
    kind: str  # "measured" or "proxy"
    source: str  # the sentence for sources.perplexity
    limit_rule: str
    supernet: dict[str, Any] | None  # the NAS experiment's supernet, when measured


def area_mm2(hw: Hardware) -> float:
    """Predicted area in mm^2 (the component area model, its default table)."""
    return float(design_area(hw, tables=load_tables()).total_mm2)


def supernet_checkpoint(upstream: Upstream) -> tuple[Path | None, str]:
    """The NAS experiment's supernet checkpoint, or None and why there is none."""
    if "nas" not in upstream:
        return None, "the nas experiment was not part of this study (--only)"
    nas_dir = upstream["nas"]
    if nas_dir is None:
        return None, "the study's nas experiment failed"
    from tstack.nas.train import CHECKPOINT_NAME  # torch: present, as the nas experiment ran

    path = nas_dir / SUPERNET_DIR / CHECKPOINT_NAME
    if not path.is_file():
        return None, "the nas experiment's work folder holds no supernet checkpoint"
    return path, ""


def supernet_digest(path: Path) -> str:
    """SHA-256 of what a supernet's measured perplexities depend on: its shape space, tokenizer, training step and
    weights (names, dtypes, shapes, values). The file's own bytes are not used: they hold the training's wall time,
    so a retrained identical supernet would look new."""
    from tstack.nas.train import load_checkpoint

    ckpt = load_checkpoint(path)
    h = hashlib.sha256(json.dumps([ckpt["space"], ckpt["tokenizer"], ckpt["step"]], sort_keys=True).encode())
    for name in sorted(ckpt["model"]):
        tensor = ckpt["model"][name]
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def upstream_key(config: StudyConfig, upstream: Upstream) -> dict[str, Any]:
    """What this experiment reads from the NAS experiment, for the runner's cache key (base.py): the supernet's
    digest and the torch thread count its perplexities are measured with (it sets the order of float sums)."""
    path, why = supernet_checkpoint(upstream)
    if path is None:
        return {"perplexity": "proxy", "why": why}
    try:
        return {"perplexity": "measured", "supernet": supernet_digest(path), "threads": config.threads}
    except TstackError as exc:
        return {"perplexity": "proxy", "why": str(exc)}


def perplexity_for(config: StudyConfig, upstream: Upstream) -> Perplexity:
    """The measured perplexity of the NAS experiment's supernet when there is one, else the proxy (docstring)."""
    shapes = load_space(config.settings.nas_space)
    path, why = supernet_checkpoint(upstream)
    if path is not None:
        from tstack.nas.search import SupernetObjective

        tokens = config.settings.nas_eval_tokens
        try:
            digest = supernet_digest(path)
            objective = SupernetObjective(path, None, tokens, config.threads)
            evaluator = objective.load()
        except TstackError as exc:
            why = f"the nas experiment's supernet could not be read ({exc})"
        else:
            if evaluator.space == shapes:
                limit = relative_perplexity_limit(objective, shapes)
                largest = float(objective(shapes.largest()))
                supernet = {"experiment": "nas", "weights_sha256": digest, "step": evaluator.step,
                            "held_out_tokens": tokens, "largest_perplexity": largest}  # fmt: skip
                return Perplexity(
                    objective, shapes, limit, "measured",
                    f"measured: each shape's sub-network of the study's NAS supernet (step {evaluator.step}) on up "
                    f"to {tokens} held-out tokens of the shipped corpus",
                    f"{SUPERNET_FACTOR:g} x the largest shape's measured perplexity, tstack codesign's rule with a "
                    "supernet",
                    supernet,
                )  # fmt: skip
            why = f"the nas experiment's supernet was trained on another shape space than {shapes.name!r}"
    return Perplexity(
        ProxyPerplexity(shapes), shapes, PROXY_LIMIT, "proxy",
        f"proxy surrogate (ProxyPerplexity), not a measurement: {why}",
        "tstack codesign's default with the proxy",
        None,
    )  # fmt: skip


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


def run(config: StudyConfig, progress: Progress, work_dir: Path, *, upstream: Upstream | None = None) -> dict[str, Any]:
    target = load_hardware(config.hw_target)
    # the preset's parameters around the study's target design (gemmini-ibert unless --hw-target says otherwise)
    hw_space = load_hardware_space(HARDWARE_SPACE, base=target)
    budget = area_mm2(target)
    ppl = perplexity_for(config, upstream or {})
    progress(f"perplexity: {ppl.kind}; limit {ppl.limit:.4g}")
    shapes = ppl.shapes
    problem = CodesignProblem(shapes, hw_space, area_mm2, ppl.model, budget, ppl.limit)
    evaluations = config.settings.codesign_evaluations
    base = base_point(problem)
    box = hypervolume_box(problem, base)
    results: dict[Strategy, CodesignResult] = {}
    for strategy in STRATEGIES:
        progress(f"{strategy.value} search: {evaluations} evaluations on {shapes.name} x {hw_space.name}")
        search = CodesignConfig(strategy, evaluations, BATCH, seed=config.seed, rounds=ROUNDS)
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
        "perplexity_source": ppl.kind,
        "perplexity_limit": ppl.limit,
        "perplexity_limit_rule": ppl.limit_rule,
        "supernet": ppl.supernet,
        "evaluations": evaluations,
        "batch": BATCH,
        "rounds": ROUNDS,
        "sampler": "tpe",
        "seed": config.seed,
        "energies": problem.energies.value,
        "hypervolume_reference": list(box.reference),
        "hypervolume_floor_perplexity": box.floor_perplexity,
        "sources": {
            "latency_cycles": "predicted (cost model of record, each op at its best mapping)",
            "energy_pj": "predicted (cost model of record; per-access energies from the area model's table)",
            "area_mm2": "predicted (tstack.hardware.area, component table)",
            "perplexity": ppl.source,
        },
        "points": points,
        "strategies": strategies,
    }
