"""The `tstack.codesign/1` JSON document of a co-design search: settings, every candidate, the front, counts.

Latency and energy are predicted by the cost model of record, area by the area model named in the document, and
perplexity by the perplexity model named there: measured (held-out perplexity of a trained supernet's sub-network)
or the proxy, a surrogate, not a measurement."""

from __future__ import annotations

from typing import Any

from tstack.codesign.evaluate import CodesignProblem, perplexity_is_measured, perplexity_source
from tstack.codesign.search import CodesignConfig, CodesignResult, Strategy

SCHEMA = "tstack.codesign/1"


def _model_name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


def codesign_document(problem: CodesignProblem, config: CodesignConfig, result: CodesignResult) -> dict[str, Any]:
    front_keys = {e.candidate.key for e in result.front()}
    best = result.best()
    if perplexity_is_measured(problem.perplexity):
        ppl = f"measured: held-out perplexity of the supernet sub-network ({perplexity_source(problem.perplexity)})"
    else:
        ppl = f"{_model_name(problem.perplexity)} (ProxyPerplexity: a surrogate, not a measurement)"
    settings: dict[str, Any] = {"rounds": config.rounds} if config.strategy is Strategy.ALTERNATING else {}
    return {
        "schema": SCHEMA,
        "strategy": result.strategy.value,
        "settings": {
            "evaluations": config.evaluations,
            "batch": config.batch,
            "hardware_share": config.hardware_share,
            "sampler": config.sampler.value,
            "seed": config.seed,
            **settings,
            "metric": problem.metric.value,
            "energies": problem.energies.value,
            "mapper": problem.mapper,
            "area_budget_mm2": problem.area_budget_mm2,
            "perplexity_limit": problem.perplexity_limit,
            "hardware_space": problem.hardware.to_dict(),
            "shape_space": problem.shapes.to_dict(),
        },
        "sources": {
            "latency_cycles": "predicted (tstack cost model of record, each op at its best mapping)",
            "energy_pj": f"predicted (tstack cost model of record; per-access energies: {problem.energies.value})",
            "area_mm2": f"predicted ({_model_name(problem.area_mm2)})",
            "perplexity": ppl,
        },
        "chosen_hardware": None if result.chosen_hardware is None else result.chosen_hardware.to_dict(),
        "best": None if best is None else best.to_dict(),
        "front": [e.to_dict() for e in result.front()],
        "candidates": [
            {**e.to_dict(), "feasible": ok, "pareto": e.candidate.key in front_keys}
            for e, ok in zip(result.evaluations, result.feasible, strict=True)
        ],
        "counts": {
            "proposals": result.n_proposals,
            "evaluations": result.n_evaluations,
            "failed": result.n_failed,
            "candidates": len(result.evaluations),
        },
    }
