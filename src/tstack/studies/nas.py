"""Hardware-aware NAS (paper §6.4, Table 9, Figs. 25-26): which decoder shapes trade perplexity for EDP best.

The pipeline of `tstack nas`, at the study's scale: train the weight-sharing supernet on the shipped corpus, price
every candidate on the target design through the per-operator lookup table, search with the paper's evolutionary
algorithm (Optuna storage in the work folder, so an interrupted study resumes the search), and select the lowest-EDP
candidate within +0.1 and +1 perplexity of the baseline.

The baseline is the largest architecture. At the `full` scale it is trained stand-alone, as the paper does; at the
smaller scales its perplexity is the supernet's largest sub-network's (training it again would double the time), and
the report says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tstack.errors import TstackError
from tstack.studies import paper
from tstack.studies.base import Progress, Scale, StudyConfig

NAME = "nas"
TITLE = "Hardware-aware NAS: perplexity vs EDP"

TOLERANCES = (0.1, 1.0)
SUPERNET_DIR = "supernet"  # the trained supernet's folder in the work folder (the co-design experiment reads it)


def run(config: StudyConfig, progress: Progress, work_dir: Path) -> dict[str, Any]:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise TstackError("the NAS experiment needs torch: pip install 'tstack[nas]' (or skip it with --only)") from exc
    from tstack.api import price_table
    from tstack.nas.data import load_corpus
    from tstack.nas.evaluate import PerplexityEvaluator
    from tstack.nas.pareto import select_within
    from tstack.nas.proxy import decoder_params, spearman
    from tstack.nas.search import SearchConfig, run_search
    from tstack.nas.train import TrainConfig, train_baseline, train_supernet
    from tstack.spec.nas_space import load_space

    s = config.settings
    space = load_space(s.nas_space)
    corpus = load_corpus(None)
    train_cfg = TrainConfig.paper() if space.name == "paper" else TrainConfig.cpu()
    if s.nas_train_steps is not None:
        from dataclasses import replace

        train_cfg = replace(train_cfg, steps=s.nas_train_steps, epochs=None, checkpoint_interval_steps=20)

    def on_step(what: str) -> Any:
        def report(step: int, total: int, loss: float) -> None:
            if step == total or step % 10 == 0:
                progress(f"{what}: step {step}/{total}, loss {loss:.3f}")

        return report

    supernet = train_supernet(
        space, corpus, work_dir / SUPERNET_DIR, train_cfg, progress=on_step("training the supernet"),
        threads=config.threads,
    )  # fmt: skip
    baseline_ckpt = None
    if config.scale is Scale.FULL:
        baseline_ckpt = train_baseline(
            space, corpus, work_dir / "baseline", train_cfg, progress=on_step("training the baseline"),
            threads=config.threads,
        )  # fmt: skip
    progress(f"pricing the {space.name} space on {config.hw_target}")
    table = price_table(space, config.hw_target, cache_dir=work_dir / "prices")
    evaluator = PerplexityEvaluator(supernet, corpus, max_tokens=s.nas_eval_tokens, threads=config.threads)
    baseline_ppl = None
    if baseline_ckpt is not None:
        stand_alone = PerplexityEvaluator(baseline_ckpt, corpus, max_tokens=s.nas_eval_tokens, threads=config.threads)
        baseline_ppl = stand_alone.perplexity(space.largest())
    search_cfg = SearchConfig(
        algorithm="evolution", population=s.nas_population, iterations=s.nas_iterations, seed=config.seed
    )

    def on_search(p: Any) -> None:
        progress(f"evolutionary search: {p.completed}/{p.total} {p.unit}, {p.evaluations} evaluated")

    results = run_search(
        space, table, evaluator.perplexity, storage=work_dir / "search.journal", config=search_cfg,
        objective_name="supernet", progress=on_search, baseline_perplexity=baseline_ppl,
    )  # fmt: skip
    if results.baseline is None:
        raise TstackError("the search evaluated no baseline (the largest architecture); rerun without --resume")
    base = results.baseline.point
    ref_ppl = base.perplexity if baseline_ppl is None else baseline_ppl
    front_keys = {e.point.key for e in results.front()}
    # by generation and key, not by trial number: a trial interrupted by a crash is redone under a later number,
    # and a resumed study must write the same document as an uninterrupted one
    evaluated = sorted(results.evaluated, key=lambda e: (-1 if e.generation is None else e.generation, e.point.key))
    points: list[dict[str, Any]] = [
        {
            "key": e.point.key,
            "perplexity": e.point.perplexity,
            "latency_cycles": e.point.latency_cycles,
            "energy_pj": e.point.energy_pj,
            "edp": e.point.edp,
            "pareto": e.point.key in front_keys,
            "generation": e.generation,
            "params": decoder_params(space, e.arch),
        }
        for e in evaluated
    ]
    front = [p for p in points if p["pareto"]]
    selected: dict[str, Any] = {}
    for tol in TOLERANCES:
        sel = select_within(results.points(), base, tol, baseline_perplexity=baseline_ppl)
        selected[f"{tol:g}"] = {
            "key": sel.point.key,
            "perplexity": sel.point.perplexity,
            "gains": {"latency": sel.latency_gain, "energy": sel.energy_gain, "edp": sel.edp_gain},
            "paper": paper.NAS_GAINS[tol],
        }
    ppl = [float(p["perplexity"]) for p in points]
    params = [-float(p["params"]) for p in points]  # more parameters, lower perplexity: a positive correlation
    return {
        "space": space.name,
        "hardware": config.hw_target,
        "seq": table.seq_len,
        "phase": str(table.phase),
        "algorithm": "evolution",
        "population": s.nas_population,
        "iterations": s.nas_iterations,
        "train_steps": evaluator.step,
        "corpus": corpus.source,
        "evaluated": len(points),
        "objective_calls": results.n_evaluations,
        "baseline": {
            "key": base.key,
            "perplexity": ref_ppl,
            "latency_cycles": base.latency_cycles,
            "energy_pj": base.energy_pj,
            "edp": base.edp,
            "source": "trained stand-alone" if baseline_ppl is not None else "the supernet's largest sub-network",
        },
        "points": points,
        "front_edp_span": max(p["edp"] for p in front) / min(p["edp"] for p in front) if front else None,
        "selected": selected,
        "proxy_spearman": spearman(params, ppl) if len(points) >= 2 else None,
    }
