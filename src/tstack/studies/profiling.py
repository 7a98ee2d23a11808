"""Real measurement (paper §2.2.2, Figs. 7-9): measured CPU latency per op class vs sequence length, and the
analytical prediction beside it.

The paper profiled an Intel Xeon Gold 6242; this runs on whatever CPU the study runs on, so absolute times differ
and the normalized latencies (Fig. 9) are compared as trends. The prediction is the calibrated roofline of
`tstack.profile.compare` (this machine's GEMM rate, attention-matmul rate and copy bandwidth, measured first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tstack.errors import TstackError
from tstack.spec.loading import load_model
from tstack.studies import paper
from tstack.studies.base import Progress, StudyConfig
from tstack.workload.model import Family, ModelSpec

NAME = "profile"
TITLE = "Real measurement: where the time goes on this CPU"


def run(config: StudyConfig, progress: Progress, work_dir: Path) -> dict[str, Any]:
    del work_dir  # this experiment keeps nothing between runs
    try:
        import torch
    except ImportError as exc:  # the study's other experiments do not need torch
        raise TstackError("the profile experiment needs torch: pip install 'tstack[ml]' (or skip it)") from exc
    from tstack.profile.calibrate import calibrate
    from tstack.profile.compare import compare
    from tstack.profile.measure import profile

    s = config.settings
    progress("calibrating this CPU (GEMM, attention matmul, copy bandwidth)")
    cal = calibrate(threads=config.threads, matmul_n=512, copy_bytes=32 * 2**20, repeats=3)
    models = list(dict.fromkeys((config.model, *s.profile_models)))
    runs: list[dict[str, Any]] = []
    for m in models:
        spec = load_model(m)
        if not isinstance(spec, ModelSpec):
            continue
        seqs = s.profile_decoder_seqs if spec.family is Family.DECODER else s.profile_seqs
        progress(f"profiling {m} at l = {', '.join(map(str, seqs))}")
        results = profile(
            spec, seqs, threads=config.threads, repeats=s.profile_repeats, rounds=s.profile_rounds, seed=config.seed
        )
        for r in results:
            cmp = compare(r, calibration=cal)
            runs.append(
                {
                    "model": m,
                    "phase": r.phase.value,
                    "seq": r.seq_len,
                    "wall_min_s": r.wall.min_s,
                    "wall_median_s": r.wall.median_s,
                    "coverage": r.coverage,
                    "shares": r.shares(),
                    "predicted_shares": {c.op_class: c.predicted_share for c in cmp.classes},
                    "warnings": list(r.warnings),
                }
            )
    ref = next((r for r in runs if r["model"] == "bert-base" and r["seq"] == 128), runs[0] if runs else None)
    for run in runs:
        run["normalized_latency"] = run["wall_min_s"] / ref["wall_min_s"] if ref else None
        table = paper.CPU_NORMALIZED_LATENCY.get(run["model"])
        run["paper_normalized_latency"] = (
            table[paper.SEQ_LENS.index(run["seq"])] if table and run["seq"] in paper.SEQ_LENS else None
        )
    return {
        "device": cal.describe(),
        "threads": config.threads or torch.get_num_threads(),
        "calibration": {
            "gemm_gflops": cal.matmul_flops_per_s / 1e9,
            "attention_gflops": cal.attention_matmul_flops_per_s / 1e9,
            "copy_gb_per_s": cal.mem_bandwidth_bytes_per_s / 1e9,
        },
        "reference": {"model": ref["model"], "seq": ref["seq"]} if ref else None,
        "runs": runs,
    }
