"""What a study is: its settings, its scale, and the contract every experiment module follows.

An experiment is a module under `tstack.studies` with a `NAME`, a `TITLE` and `run(config, progress, work_dir)`
returning a dict:
plain JSON data (numbers, lists, strings), never printed output, never figures — the report renders those.
`work_dir` is the experiment's own folder for state that lets an interrupted run resume (NAS checkpoints and
search storage); it is emptied when the study is not resumed. Data
that depends on another experiment (the cumulative gain table) is derived from the other experiments' data.

An experiment that reads another's outputs (the co-design experiment reads the NAS experiment's trained supernet)
names it in `USES`, takes `upstream` (an `Upstream`) as a keyword of `run`, and has `upstream_key(config, upstream)`:
the identity of what it reads (a digest of the checkpoint, say), which the runner adds to its cache key, so that a
changed input re-runs it and a resumed study never reuses a result computed from another one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from tstack.errors import SpecError


class Scale(StrEnum):
    QUICK = "quick"  # about 2 minutes on 2 cores: small sweeps, a tiny NAS
    DEFAULT = "default"  # about 15 minutes on 2 cores
    FULL = "full"  # the paper's scale; NAS wants a GPU or a Ray cluster


@dataclass(frozen=True, slots=True)
class ScaleSettings:
    """How much work each experiment does at a scale (the knobs the paper's figures use, shrunk for a CPU)."""

    workload_seqs: tuple[int, ...] = (128, 256, 512, 1024, 2048, 4096)
    profile_seqs: tuple[int, ...] = (128, 256, 512)
    profile_decoder_seqs: tuple[int, ...] = (32, 64)
    profile_models: tuple[str, ...] = ("bert-base", "bert-large", "gpt2")
    profile_repeats: int = 3
    profile_rounds: int = 2
    mapspace_samples: int = 100_000  # the paper's count (Figs. 18-19); vectorized, a few seconds
    mapspace_ops: tuple[str, ...] = (
        "bert-base-mha",
        "bert-base-ffn",
        "resnet50-conv5-3x3-512",
        "resnet50-conv5-1x1-2048",
    )
    fusion_seqs: tuple[int, ...] = (512, 4096)
    nas_space: str = "cpu"
    nas_train_steps: int | None = None  # None: the space's training preset
    nas_population: int = 40
    nas_iterations: int = 40
    nas_eval_tokens: int = 16_384  # held-out tokens per perplexity (the evaluator's default)
    codesign_evaluations: int = 100  # proposals per co-design strategy

    @staticmethod
    def of(scale: Scale) -> ScaleSettings:
        if scale is Scale.QUICK:
            return ScaleSettings(
                workload_seqs=(128, 512, 4096),
                profile_seqs=(128, 256),
                profile_decoder_seqs=(16, 32),
                profile_models=("bert-base", "gpt2"),
                profile_repeats=2,
                profile_rounds=1,
                mapspace_samples=5_000,
                mapspace_ops=("bert-base-mha", "bert-base-ffn"),
                fusion_seqs=(512,),
                nas_train_steps=40,
                nas_population=12,
                nas_iterations=5,
                nas_eval_tokens=4096,
                codesign_evaluations=16,
            )
        if scale is Scale.FULL:
            return ScaleSettings(
                profile_seqs=(128, 256, 512, 1024, 2048, 4096),
                profile_decoder_seqs=(128, 256, 512),
                profile_repeats=5,
                profile_rounds=3,
                mapspace_samples=100_000,
                mapspace_ops=(
                    "bert-base-mha",
                    "bert-base-ffn",
                    "bert-large-mha",
                    "bert-large-ffn",
                    "equal-mac-240x240x512",
                    "equal-mac-480x120x512",
                    "resnet50-conv1-7x7-64",
                    "resnet50-conv5-3x3-512",
                    "resnet50-conv5-1x1-512",
                    "resnet50-conv5-1x1-2048",
                ),
                nas_space="paper",
                codesign_evaluations=300,
            )
        return ScaleSettings()


@dataclass(frozen=True, slots=True)
class StudyConfig:
    """The study's inputs. Defaults are the paper's setting."""

    model: str = "bert-base"
    hw_baseline: str = "gemmini-baseline"
    hw_target: str = "gemmini-ibert"
    seq: int = 512
    scale: Scale = Scale.DEFAULT
    seed: int = 0
    threads: int | None = None
    settings: ScaleSettings = field(default_factory=ScaleSettings)

    def __post_init__(self) -> None:
        if self.seq <= 0:
            raise SpecError(f"--seq must be a positive number of tokens, got {self.seq}")

    @staticmethod
    def make(scale: Scale = Scale.DEFAULT, **kwargs: Any) -> StudyConfig:
        return StudyConfig(scale=scale, settings=ScaleSettings.of(scale), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scale"] = self.scale.value
        return d


Progress = Callable[[str], None]  # called with a short description of the step now running

Upstream = Mapping[str, Path | None]
"""What the study's earlier experiments left for a later one that `USES` them, by name: the experiment's work folder
when it finished (ran, or came from the cache), None when it failed; absent when it was not in this study (--only)."""


class Experiment(Protocol):
    NAME: str
    TITLE: str

    def run(self, config: StudyConfig, progress: Progress, work_dir: Path) -> dict[str, Any]: ...


def ratio(a: float, b: float) -> float:
    """a / b, with 0 / 0 = 1 and x / 0 = inf, for "how many times" columns."""
    if b == 0:
        return 1.0 if a == 0 else float("inf")
    return a / b
