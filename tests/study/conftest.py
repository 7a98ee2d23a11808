"""A small but real study, shared by the study tests: every number in it is computed, only the sizes are small."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tstack.studies.base import Scale, ScaleSettings, StudyConfig

TINY = ScaleSettings(
    workload_seqs=(128, 512),
    profile_seqs=(32, 64),
    profile_decoder_seqs=(8,),
    profile_models=("gpt2",),
    profile_repeats=1,
    profile_rounds=1,
    mapspace_samples=400,
    mapspace_ops=("bert-base-mha",),
    fusion_seqs=(128,),
    nas_train_steps=4,
    nas_population=6,
    nas_iterations=2,
    nas_eval_tokens=1024,
    codesign_evaluations=16,  # the quick scale's: fewer, and a hardware phase of seed 0 meets no area budget
)


def tiny_config(**overrides: Any) -> StudyConfig:
    return StudyConfig(scale=Scale.QUICK, seq=128, settings=TINY, threads=1, **overrides)


@pytest.fixture(scope="session")
def fast_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Every experiment at a tiny size (profile and NAS only when torch is installed; co-design then measures
    perplexity on the NAS experiment's supernet, else uses the proxy), run for real, with the report rendered."""
    from tstack.report.study_html import render_report
    from tstack.studies.runner import run_study

    out = tmp_path_factory.mktemp("study")
    try:
        import torch  # noqa: F401

        only = ["workload", "profile", "gemmini", "mapping", "nas", "codesign"]
    except ImportError:
        only = ["workload", "gemmini", "mapping", "codesign"]
    doc = run_study(tiny_config(), out, only=only)
    render_report(doc, out)
    return doc, out
