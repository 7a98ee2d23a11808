"""The `tstack.nas/1` JSON document of a NAS study and its rich tables (Pareto front, Table 9's selections).

`tstack.nas/1` (`nas search`, `nas report`): schema, study, storage (credentials redacted), search (what was searched:
algorithm, space, hardware, seq_len, phase, objective, ...), counts {trials, evaluations, cached, duplicates,
failed}, notes, baseline, pareto, selections [{tolerance, ..., gains, paper}], hypervolume, candidates.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from tstack.nas.search import Evaluated, StudyResults
    from tstack.nas.space import Architecture

NAS_SCHEMA = "tstack.nas/1"

PROXY_NOTE = (
    "perplexity is a surrogate, not a measurement: 22.4 x (decoder parameters / the largest's)^-0.04, from the "
    "LiteTransformerSearch proxy (tstack.nas.proxy.ProxyPerplexity)"
)


def _arch(a: Architecture) -> dict[str, Any]:
    return a.to_dict()


def _row(e: Evaluated, base_edp: float) -> dict[str, Any]:
    p = e.point
    return {
        "key": p.key,
        "arch": _arch(e.arch),
        "perplexity": p.perplexity,
        "latency_cycles": p.latency_cycles,
        "energy_pj": p.energy_pj,
        "edp": p.edp,
        "edp_normalized": p.edp / base_edp,
        "trial": e.trial,
        "generation": e.generation,
        "role": e.role,
    }


def nas_document(results: StudyResults, storage: str) -> dict[str, Any]:
    """The `tstack.nas/1` document of a study: what was searched, the front, and the selections vs the paper."""
    from tstack.nas.pareto import PAPER_TOLERANCES, hypervolume_2d, select_within
    from tstack.nas.search import redact

    meta = dict(results.meta)
    doc: dict[str, Any] = {
        "schema": NAS_SCHEMA,
        "study": results.study_name,
        "storage": redact(storage),
        "search": meta,
        "counts": {
            "trials": results.n_trials,
            "evaluations": results.n_evaluations,
            "cached": results.n_cached,
            "duplicates": results.n_duplicates,
            "failed": results.n_failed,
        },
        "notes": {
            "edp": "energy x delay in pJ x cycles on the priced hardware, sequence length and phase (search)",
            "gains": "baseline / selected, for latency, energy and EDP; the paper's Table 9 / §6.4 values beside",
        },
    }
    if meta.get("objective") == "proxy":
        doc["notes"]["perplexity"] = PROXY_NOTE
    base = results.baseline
    if base is None:
        doc.update(baseline=None, pareto=[], selections=[], hypervolume=None, candidates=[])
        return doc
    base_ppl = results.baseline_perplexity
    source = "stand-alone" if base_ppl is not None else str(meta.get("objective", "objective"))
    base_edp = base.point.edp
    doc["baseline"] = {**_row(base, base_edp), "perplexity_source": source,
                       "perplexity": base.point.perplexity if base_ppl is None else base_ppl,
                       "perplexity_in_search": base.point.perplexity}  # fmt: skip
    doc["pareto"] = [_row(e, base_edp) for e in results.front()]
    selections = []
    for tol in PAPER_TOLERANCES:
        sel = select_within(results.points(), base.point, tol, base_ppl)
        chosen = next(e for e in results.evaluated if e.point.key == sel.point.key)
        paper = sel.paper_gains
        selections.append(
            {
                "tolerance": tol,
                **_row(chosen, base_edp),
                "gains": {"latency": sel.latency_gain, "energy": sel.energy_gain, "edp": sel.edp_gain},
                "paper": None if paper is None else dict(zip(("latency", "energy", "edp"), paper, strict=True)),
            }
        )
    doc["selections"] = selections
    pts = [(e.point.perplexity, e.point.edp / base_edp) for e in results.evaluated]
    ref = (max(p for p, _ in pts), max(x for _, x in pts))
    doc["hypervolume"] = {
        "value": hypervolume_2d(pts, ref),
        "reference": list(ref),
        "axes": ["perplexity", "EDP / baseline EDP"],
        "note": "reference = the worst perplexity and normalized EDP among the evaluated candidates",
    }
    doc["candidates"] = [_row(e, base_edp) for e in results.evaluated]
    return doc


def nas_summary(doc: dict[str, Any]) -> str:
    """One line: which study, what was searched, and how many candidates were evaluated."""
    m, c = doc["search"], doc["counts"]
    return (
        f"study {doc['study']} in {doc['storage']}: {m.get('algorithm')} on space {m.get('space', {}).get('name')}, "
        f"{m.get('hardware')} at l={m.get('seq_len')} ({m.get('phase')}), objective {m.get('objective')}; "
        f"{c['evaluations']} evaluations ({c['cached']} cached, {c['duplicates']} duplicates, {c['failed']} failed)"
    )


def nas_tables(doc: dict[str, Any]) -> list[Table]:
    """The Pareto front and the selections at the paper's tolerances (Table 9) of a document with a baseline."""
    b = doc["baseline"]
    front = Table(
        title=f"Pareto front ({len(doc['pareto'])} of {len(doc['candidates'])}); architectures as "
        "L<layers>-d<width>-h<heads per layer>-f<d_ff per layer>",
        title_justify="left",
    )
    front.add_column("architecture", overflow="fold")
    for col in ("perplexity", "latency (Mcycles)", "energy (µJ)", "EDP / baseline"):
        front.add_column(col, justify="right")
    for r in doc["pareto"]:
        front.add_row(r["key"], f"{r['perplexity']:.3f}", f"{r['latency_cycles'] / 1e6:.4g}",
                      f"{r['energy_pj'] / 1e6:.4g}", f"{r['edp_normalized']:.3f}")  # fmt: skip
    sel = Table(
        title=f"Selected (Table 9): baseline {b['key']}, perplexity {b['perplexity']:.3f} ({b['perplexity_source']})",
        title_justify="left",
    )
    sel.add_column("tolerance", justify="right")
    sel.add_column("architecture", overflow="fold")
    for col in ("perplexity", "latency gain", "energy gain", "EDP gain"):
        sel.add_column(col, justify="right")
    for s in doc["selections"]:
        g, p = s["gains"], s["paper"] or {}

        def cell(name: str, gains: dict[str, float] = g, paper: dict[str, float] = p) -> str:
            ours = f"{gains[name]:.2f}x"
            return f"{ours} (paper {paper[name]:g}x)" if name in paper and math.isfinite(paper[name]) else ours

        sel.add_row(f"+{s['tolerance']:g}", s["key"], f"{s['perplexity']:.3f}", cell("latency"),
                    cell("energy"), cell("edp"))  # fmt: skip
    return [front, sel]
