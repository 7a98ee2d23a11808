"""The Gemmini case study (paper §3.4, Figs. 13-14): from the CNN-tuned baseline to the Transformer-tuned design.

Three designs at the study's sequence length: the baseline (host CPU runs every nonlinear op in float), the
rebalanced memories (§3.4.3) and the target (I-BERT integer kernels on normalization/activation units, §3.4.4);
plus the Fig. 13 grid of accumulator x scratchpad sizes on the baseline, and the speedup's sensitivity to each input
that is calibrated or assumed rather than measured (`tstack.studies.sensitivity`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tstack import api
from tstack.errors import TstackError
from tstack.simulate import ModelResult
from tstack.simulate.sweep import grid
from tstack.spec.hardware import load_hardware
from tstack.spec.sweep import parse_axis
from tstack.studies import paper
from tstack.studies.base import Progress, StudyConfig, ratio
from tstack.studies.sensitivity import sensitivity

NAME = "gemmini"
TITLE = "Accelerator: the Gemmini case study"


def _design(r: ModelResult) -> dict[str, Any]:
    cats = r.by_category()
    return {
        "hardware": r.hardware.name,
        "latency_cycles": r.latency_cycles,
        "energy_pj": r.energy_pj,
        "edp": r.edp,
        "utilization": r.utilization,
        "matmul_utilization": r.matmul_utilization,
        "category_cycles": dict(cats),
        "category_shares": {k: v / r.latency_cycles for k, v in cats.items()},
    }


def run(config: StudyConfig, progress: Progress, work_dir: Path) -> dict[str, Any]:
    del work_dir  # this experiment keeps nothing between runs
    designs = list(dict.fromkeys((config.hw_baseline, "gemmini-rebalanced", config.hw_target)))
    results = {}
    for hw in designs:
        progress(f"simulating {config.model} on {hw}")
        results[hw] = api.simulate(config.model, hw, config.seq)
    base, target = results[config.hw_baseline], results[config.hw_target]
    progress("sweeping accumulator x scratchpad (Fig. 13)")
    base_hw = load_hardware(config.hw_baseline)
    sizes = "64K,128K,256K"
    try:
        axes = [parse_axis(f"accumulator={sizes}", base_hw), parse_axis(f"scratchpad={sizes}", base_hw)]
        cells = [
            {"accumulator_kb": acc // 1024, "scratchpad_kb": spad // 1024, "matmul_utilization": r.matmul_utilization}
            for (acc, spad), design in grid(base_hw, axes)
            for r in (api.simulate(config.model, design, config.seq),)
        ]
    except Exception as exc:  # a design without these memories: the grid does not apply, the rest does
        cells = []
        progress(f"memory grid skipped: {exc}")
    progress("moving each calibrated or assumed input over its range (sensitivity of the speedup)")
    try:
        spread: dict[str, Any] = sensitivity(config.model, config.seq, config.hw_baseline, config.hw_target)
    except TstackError as exc:  # a design without a host or a DMA link: say so, keep the rest
        spread = {"error": str(exc)}
        progress(f"sensitivity skipped: {exc}")
    rebalanced_cut = None
    if "gemmini-rebalanced" in results and config.hw_baseline == "gemmini-baseline":
        rebalanced_cut = 1 - results["gemmini-rebalanced"].matmul_cycles() / base.matmul_cycles()
    return {
        "model": config.model,
        "seq": config.seq,
        "designs": [_design(results[h]) for h in designs],
        "baseline": config.hw_baseline,
        "target": config.hw_target,
        "speedup_latency": ratio(base.latency_cycles, target.latency_cycles),
        "gain_energy": ratio(base.energy_pj, target.energy_pj),
        "gain_edp": ratio(base.edp, target.edp),
        "rebalanced_matmul_cut": rebalanced_cut,
        "memory_grid": cells,
        "sensitivity": spread,
        "paper": {
            "speedup_latency": paper.HARDWARE_SPEEDUP,
            "baseline_utilization_below": paper.BASELINE_UTILIZATION_BELOW,
            "rebalanced_matmul_cut": paper.MEMORY_REBALANCING_MATMUL_CUT,
            "baseline_shares": {k: v / 100 for k, v in paper.FIG14_BASELINE_SHARES.items()},
            "target_shares": {k: v / 100 for k, v in paper.FIG14_IBERT_SHARES.items()},
            "fig13": {str(k): list(v) for k, v in paper.FIG13_UTILIZATION.items()},
        },
    }
