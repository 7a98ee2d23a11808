"""Runs the study: each experiment in turn, each result cached on disk, then the cumulative table.

Library code: it never prints; the caller passes callbacks for progress. A `TstackError` in one experiment (say,
torch missing for the profile) is recorded in that experiment's place and the study goes on; anything else stops
the study with every finished experiment already cached, so `resume=True` picks up where it stopped.
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from tstack import __version__
from tstack.errors import SpecError, TstackError
from tstack.fileio import clean_stale_temp, write_atomic
from tstack.studies import cumulative
from tstack.studies.base import Progress, StudyConfig, Upstream
from tstack.studies.cache import StudyCache, cache_key

SCHEMA = "tstack.study/1"
EXPERIMENTS = ("workload", "profile", "gemmini", "mapping", "nas", "codesign")
_TORCH_EXPERIMENTS = frozenset({"profile", "nas"})
_MODULES = {
    "workload": "workload",
    "profile": "profiling",
    "gemmini": "gemmini",
    "mapping": "mapping",
    "nas": "nas",
    "codesign": "codesign",
}


def experiment_module(name: str) -> ModuleType:
    return importlib.import_module(f"tstack.studies.{_MODULES[name]}")


def parse_only(names: Sequence[str] | None) -> tuple[str, ...]:
    if not names:
        return EXPERIMENTS
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise SpecError(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    return tuple(n for n in EXPERIMENTS if n in names)


def _settings_for(name: str, config: StudyConfig) -> dict[str, Any]:
    """What an experiment's result depends on: the whole config (simple, and never stale), less the torch thread
    count for the experiments that do not run torch."""
    d = config.to_dict()
    if name not in _TORCH_EXPERIMENTS:
        del d["threads"]
    d["experiment"] = name
    return d


def _with_threads(config: StudyConfig, names: Sequence[str]) -> StudyConfig:
    """`config` with its torch thread count made explicit when a torch experiment runs.

    The NAS experiment's results depend on the thread count (it sets the order of float sums in training and
    evaluation; benchmarks/RESULTS-robustness.md), and torch's default is the machine's core count. Recording the
    count used makes the study say what it ran with, and keys the cache and the resumable work folders by it, so a
    resume never mixes two thread counts."""
    if config.threads is not None or not _TORCH_EXPERIMENTS & set(names):
        return config
    try:
        import torch
    except ImportError:
        return config  # the torch experiments record their own refusal
    return replace(config, threads=torch.get_num_threads())


class Callbacks:
    """Hooks a front end implements to show progress; the defaults do nothing."""

    def start(self, name: str, title: str, index: int, total: int) -> None: ...

    def step(self, name: str, text: str) -> None: ...

    def done(self, name: str, seconds: float, cached: bool, error: str | None) -> None: ...


def _stepper(cb: Callbacks, name: str) -> Progress:
    return lambda text: cb.step(name, text)


def run_study(
    config: StudyConfig,
    out_dir: Path,
    *,
    resume: bool = False,
    only: Sequence[str] | None = None,
    callbacks: Callbacks | None = None,
) -> dict[str, Any]:
    """Run (or, with `resume`, reuse) each experiment; write `study.json` in `out_dir`; return its document."""
    cb = callbacks or Callbacks()
    names = parse_only(only)
    config = _with_threads(config, names)
    # what a killed run was writing (checkpoints, cache entries, figures); only the study's own folders are walked
    clean_stale_temp(out_dir)
    for sub in ("cache", "figures", "work"):
        clean_stale_temp(out_dir / sub, recursive=True)
    cache = StudyCache(out_dir / "cache")
    data: dict[str, dict[str, Any]] = {}
    meta: dict[str, dict[str, Any]] = {}
    finished: dict[str, Path | None] = {}  # each experiment's work folder, None when it failed (base.Upstream)
    for i, name in enumerate(names):
        module = experiment_module(name)
        cb.start(name, module.TITLE, i, len(names))
        uses: tuple[str, ...] = getattr(module, "USES", ())
        upstream: Upstream = {n: finished[n] for n in uses if n in finished}
        settings = _settings_for(name, config)
        if uses:
            settings["upstream"] = module.upstream_key(config, upstream)
        key = cache_key(name, settings)
        work_dir = out_dir / "work" / name / key
        cached = cache.load(name, key) if resume else None
        if cached is not None:
            data[name] = cached
            meta[name] = {"title": module.TITLE, "cached": True, "seconds": 0.0, "error": None}
            finished[name] = work_dir
            cb.done(name, 0.0, True, None)
            continue
        if not resume:
            shutil.rmtree(out_dir / "work" / name, ignore_errors=True)
        t0 = time.perf_counter()
        step = _stepper(cb, name)
        error = None
        try:
            result = (
                module.run(config, step, work_dir, upstream=upstream) if uses else module.run(config, step, work_dir)
            )
        except TstackError as exc:
            error = str(exc)
            result = {"error": error}
        seconds = time.perf_counter() - t0
        if error is None:
            cache.store(name, key, result, seconds)
        data[name] = result
        meta[name] = {"title": module.TITLE, "cached": False, "seconds": seconds, "error": error}
        finished[name] = work_dir if error is None else None
        cb.done(name, seconds, False, error)
    doc = {
        "schema": SCHEMA,
        "tstack_version": __version__,
        "created_unix_s": time.time(),
        "config": config.to_dict(),
        "experiments": {n: {**meta[n], "data": data[n]} for n in names},
        "cumulative": cumulative.derive({n: d for n, d in data.items() if "error" not in d}),
    }
    write_atomic(out_dir / "study.json", json.dumps(doc, indent=1, allow_nan=True))
    return doc


def load_study(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise SpecError(f"{path} is not a tstack study (schema {SCHEMA}); run `tstack study` to make one")
    return doc
