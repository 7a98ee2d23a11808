"""Workload analysis (paper §2.2, Tables 3-4, Figs. 4-6): FLOPs, bytes and arithmetic intensity vs sequence length.

Counted under the `paper-2023` convention so that every cell is comparable with the paper's; the study's model is
analyzed beside BERT-Base, BERT-Large and GPT-2 (the paper's three), and ResNet-50 is the CNN contrast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tstack import api
from tstack.studies import paper
from tstack.studies.base import Progress, StudyConfig

NAME = "workload"
TITLE = "Workload analysis: where the FLOPs and bytes are"

_GROUPS = ("mha_proj", "mha_act", "ffn_proj", "other")


def _series(model: str, seqs: tuple[int, ...]) -> dict[str, Any]:
    a = api.analyze(model, seq=seqs, convention="paper-2023")
    rows = []
    for s, r in zip(seqs, a.results, strict=True):
        total = r.total
        groups = r.by_group()
        rows.append(
            {
                "seq": s,
                "gflops": total.flops / 1e9,
                "gmops": total.mops_bytes / 1e9,
                "ai": total.arithmetic_intensity,
                "groups": {
                    g: {
                        "flops_share": groups[g].flops / total.flops,
                        "mops_share": groups[g].mops_bytes / total.mops_bytes,
                        "ai": groups[g].arithmetic_intensity,
                    }
                    for g in _GROUPS
                    if g in groups
                },
            }
        )
    return {"model": model, "phase": a.phase.value, "rows": rows}


def _paper_cell(table: Mapping[str, Sequence[float]], model: str, seq: int) -> float | None:
    if model not in table or seq not in paper.SEQ_LENS:
        return None
    return float(table[model][paper.SEQ_LENS.index(seq)])


def run(config: StudyConfig, progress: Progress, work_dir: Path) -> dict[str, Any]:
    del work_dir  # this experiment keeps nothing between runs
    seqs = config.settings.workload_seqs
    models = list(dict.fromkeys((config.model, "bert-base", "bert-large", "gpt2")))
    series = []
    for m in models:
        progress(f"analyzing {m}")
        s = _series(m, seqs)
        for row in s["rows"]:
            row["paper_gflops"] = _paper_cell(paper.GFLOPS, m, row["seq"])
            row["paper_ai"] = _paper_cell(paper.ARITHMETIC_INTENSITY, m, row["seq"])
        series.append(s)
    table3 = []
    bert = next(s for s in series if s["model"] == "bert-base")
    for row in bert["rows"]:
        if row["seq"] in paper.TABLE3_AI:
            ours = [row["groups"][g]["ai"] for g in _GROUPS] + [row["ai"]]
            table3.append({"seq": row["seq"], "ai": ours, "paper_ai": list(paper.TABLE3_AI[row["seq"]])})
    progress("analyzing resnet50")
    cnn = api.analyze("resnet50", convention="paper-2023")
    unfused = cnn.results[0].total
    assert cnn.fused is not None
    fused = cnn.fused.total
    return {
        "convention": "paper-2023",
        "series": series,
        "table3": table3,
        "table3_columns": ["MHA projections", "MHA act-to-act", "FFN", "Other", "Total"],
        "resnet50": {
            "gflops": unfused.flops / 1e9,
            "gmops": unfused.mops_bytes / 1e9,
            "ai_unfused": unfused.arithmetic_intensity,
            "ai_fused": fused.arithmetic_intensity,
            "paper": {"gflops": 7.31, "gmops": 0.11, "ai_unfused": 66.94, "ai_fused": 121.36},
            "note": "no natural ResNet-50 layer list reproduces the paper's Table 4 (7.26 conv GFLOPs); tstack "
            "uses the closest one, Table 12's blocks (see tests/golden).",
        },
    }
