"""Mapping and scheduling (paper §5, Figs. 18-22): how wide the mapspace is, what search buys, when to fuse.

Three results: the mapspace characterization (random valid mappings per op, EDP relative to the exhaustive
optimum; with the same statistics under Timeloop's model for three readings of its Gemmini mapspace, which bracket
the paper's; and, side by side for the ops it was run on, the paper, real Timeloop's random mapper on Gemmini's
published Timeloop files (measured, benchmarks/timeloop_mapper_samples.py) and tstack's `timeloop-ids` reading of
the same files (predicted)), the mapper gain on the whole model (Gemmini's heuristic tiler vs the exhaustive
mapper, both under tstack's cost model, on the target design), and the fusion study (matmul + Softmax / LayerNorm
pairs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tstack import api
from tstack.errors import InfeasibleError, TstackError
from tstack.hardware.design import design_of, with_capacities
from tstack.hardware.types import Hardware
from tstack.mapping.mapspace import PAPER_OPS, Semantics, characterize
from tstack.simulate.fusion import fusion_study
from tstack.spec.hardware import load_hardware
from tstack.spec.loading import load_model
from tstack.spec.timeloop import MEASURED, gemmini_timeloop_files, timeloop_measurement
from tstack.studies import paper
from tstack.studies.base import Progress, StudyConfig, ratio
from tstack.workload.model import ModelSpec

NAME = "mapping"
TITLE = "Mapping and scheduling: the mapspace, the mapper, fusion"

_BINS_PER_DECADE = 10
# Timeloop's model over three readings of its Gemmini mapspace (tstack.mapping.mapspace, benchmarks/RESULTS-mapping.md)
_READINGS = (Semantics.TIMELOOP, Semantics.NEST, Semantics.NEST_FREE)


def _mapspace(config: StudyConfig, progress: Progress) -> list[dict[str, Any]]:
    hw = load_hardware(config.hw_baseline)
    out = []
    for i, name in enumerate(config.settings.mapspace_ops):
        progress(f"mapspace {name} ({config.settings.mapspace_samples:,} random mappings)")
        st = characterize(name, PAPER_OPS[name], hw, config.settings.mapspace_samples, config.seed + i)
        decades = max(1, int(np.ceil(np.log10(max(st.span, 10.0)))))
        edges = np.logspace(0, decades, decades * _BINS_PER_DECADE + 1)  # relative EDP 1 .. past the worst
        counts, _ = np.histogram(np.clip(st.relative_edp, 1, edges[-1]), bins=edges)
        rel = np.sort(st.relative_edp)
        cdf_x = rel[np.linspace(0, len(rel) - 1, 200).astype(int)]
        p = paper.MAPSPACE.get(name)
        readings: list[dict[str, Any]] = []
        for semantics in _READINGS:
            progress(f"mapspace {name} under {semantics.value} semantics")
            try:
                r = characterize(
                    name,
                    PAPER_OPS[name],
                    hw,
                    config.settings.mapspace_samples,
                    config.seed + i,
                    semantics,
                    timeloop=gemmini_timeloop_files(),
                )
            except InfeasibleError as exc:  # a design outside Gemmini's hierarchy has no nest reading
                readings.append({"semantics": semantics.value, "error": str(exc)})
                continue
            readings.append({"semantics": semantics.value, "p10": r.p10, "within_3x": r.within_3x, "span": r.span})
        out.append(
            {
                "op": name,
                "shape": [st.shape.m, st.shape.n, st.shape.k],
                "valid_mappings": st.valid_mappings,
                "samples": st.samples,
                "p10": st.p10,
                "within_3x": st.within_3x,
                "span": st.span,
                "heuristic_relative_edp": st.heuristic.edp / st.best.edp,
                "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
                "cdf": {"relative_edp": cdf_x.tolist(), "fraction": np.linspace(0, 1, 200).tolist()},
                "paper_p10": p[0] if p else None,
                "paper_within_3x": p[1] if p else None,
                "readings": readings,
                "timeloop": _timeloop_side_by_side(name, hw, config.seed + i, progress),
            }
        )
    return out


def _timeloop_side_by_side(name: str, hw: Hardware, seed: int, progress: Progress) -> dict[str, Any] | None:
    """The paper, real Timeloop's random mapper on Gemmini's published files (measured) and tstack's `timeloop-ids`
    reading of the same files (predicted) at the measurement's sample count, since the reference (the best sample)
    depends on it; None for an op Timeloop was not run on."""
    measured = timeloop_measurement()
    run = measured["ops"].get(name)
    if run is None:
        return None
    samples = int(run["samples"])
    progress(f"mapspace {name}: Timeloop's ID sampler on Gemmini's Timeloop files ({samples:,} mappings)")
    try:
        st = characterize(
            name, PAPER_OPS[name], hw, samples, seed, Semantics.TIMELOOP_IDS, timeloop=gemmini_timeloop_files()
        )
        predicted: dict[str, Any] = {"p10": st.p10, "within_3x": st.within_3x, "span": st.span, "samples": samples}
    except InfeasibleError as exc:
        predicted = {"error": str(exc)}
    real = run["relative_edp"]
    return {
        "measured": {
            "p10": real["p10"],
            "p10_stderr": real["p10_stderr"],
            "within_3x": real["within_3x"],
            "within_3x_stderr": real["within_3x_stderr"],
            "span": real["span"],
            "samples": samples,
            "source": f"Timeloop {measured['timeloop']['commit'][:7]} timeloop-mapper (random), "
            f"{measured['files']['restating']}; {MEASURED.name}, measured {measured['measured_on']}",
        },
        "predicted": predicted,
    }


def _fusion_designs(target: Hardware) -> list[Hardware]:
    """The target with the paper's Figs. 21-22 memories: a 256 kB scratchpad, a 128 or a 256 kB accumulator."""
    reading = design_of(target)
    if reading.shared_buffer:
        raise TstackError(f"{target.name!r} has no separate accumulator to hold fused rows")
    spad, acc = reading.scratchpad, reading.accumulator
    return [
        with_capacities(target, {spad.name: paper.FUSION_SCRATCHPAD_KB * 1024, acc.name: acc_kb * 1024})
        for acc_kb in paper.FUSION_ACCUMULATOR_KB
    ]


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _fusion(spec: ModelSpec, config: StudyConfig, progress: Progress) -> list[dict[str, Any]]:
    out = []
    for design in _fusion_designs(load_hardware(config.hw_target)):
        acc_kb = design_of(design).accumulator.capacity_bytes // 1024
        for seq in config.settings.fusion_seqs:
            progress(f"fusion study at l = {seq}, {acc_kb} kB accumulator")
            for r in fusion_study(spec, design, seq):
                key = (r.pair, r.seq_len, r.accumulator_bytes // 1024)
                fits = math.isfinite(r.fused.total_cycles)  # the forced row tile may not fit the memories
                out.append(
                    {
                        "pair": r.pair,
                        "seq": r.seq_len,
                        "accumulator_kb": r.accumulator_bytes // 1024,
                        "non_fused_cycles": [r.non_fused.matmul_cycles, r.non_fused.nonlinear_cycles],
                        "fused_cycles": [_finite(r.fused.matmul_cycles), r.fused.nonlinear_cycles],
                        "fits": fits,
                        "change": r.change if fits else None,
                        "matmul_change": r.fused.matmul_cycles / r.non_fused.matmul_cycles - 1 if fits else None,
                        "paper_change": paper.FUSION_CHANGE.get(key),
                        "paper_of_matmul": key in paper.FUSION_CHANGE_OF_MATMUL,
                    }
                )
    return out


def run(config: StudyConfig, progress: Progress, work_dir: Path) -> dict[str, Any]:
    del work_dir  # this experiment keeps nothing between runs
    spec = load_model(config.model)
    mapspace = _mapspace(config, progress)
    progress(f"mapping every matmul of {config.model} on {config.hw_target}: heuristic vs exhaustive")
    heuristic = api.simulate(config.model, config.hw_target, config.seq, mapper="gemmini")
    searched = api.simulate(config.model, config.hw_target, config.seq, mapper="exhaustive")
    fusion: list[dict[str, Any]] = []
    fusion_note = None
    if isinstance(spec, ModelSpec):
        try:
            fusion = _fusion(spec, config, progress)
        except TstackError as exc:
            fusion_note = str(exc)
    return {
        "mapspace_hardware": config.hw_baseline,
        "mapspace": mapspace,
        "mapper": {
            "hardware": config.hw_target,
            "heuristic": {"latency_cycles": heuristic.latency_cycles, "energy_pj": heuristic.energy_pj},
            "exhaustive": {"latency_cycles": searched.latency_cycles, "energy_pj": searched.energy_pj},
            "gain_latency": ratio(heuristic.latency_cycles, searched.latency_cycles),
            "gain_energy": ratio(heuristic.energy_pj, searched.energy_pj),
            "gain_edp": ratio(heuristic.edp, searched.edp),
        },
        "fusion_hardware": f"{config.hw_target} with a {paper.FUSION_SCRATCHPAD_KB} kB scratchpad and a "
        + " or ".join(f"{kb}" for kb in paper.FUSION_ACCUMULATOR_KB)
        + " kB accumulator (the paper's setting)",
        "fusion": fusion,
        "fusion_note": fusion_note,
    }
