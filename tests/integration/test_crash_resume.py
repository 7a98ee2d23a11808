"""SIGKILL at random points of `tstack nas search` and `tstack study`, then a resume: it finishes (no stuck journal
lock, no busy wait), leaves no orphaned temporary file, and its results equal an uninterrupted run's.

Kill points are drawn from a seeded generator (the same points every run), measured in progress, not in time, where
progress is visible: the journal's size for the search (a fraction of the uninterrupted run's journal), so a slow
machine moves the kill later in time, not out of the run. The study's NAS experiment is killed the same way, by its
supernet checkpoint and its search journal; the cheap experiments write nothing visible while they run, so their
kill points are times. Wherever one lands (even after the end) the resume must give the same document.
Every subprocess has a generous timeout; nothing here asserts on durations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.integration.test_cli_nas import TINY  # the same tiny search space the NAS CLI tests use
from tests.study.comparable import without_timings

pytest.importorskip("optuna")

TIMEOUT_S = 300  # a resumed run takes seconds; this only turns a hang into a failure
RNG = np.random.default_rng(19)


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _tstack(*args: str) -> list[str]:
    return [sys.executable, "-m", "tstack", *args]


def _search_args(space: Path, storage: str) -> list[str]:
    return ["nas", "search", "--objective", "proxy", "--space", str(space), "--population", "8",
            "--iterations", "6", "--storage", storage, "--json"]  # fmt: skip


def _temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith((".tmp", ".rename")) or p.name.endswith(".lock"))


def _search_result(doc: dict[str, Any]) -> Any:
    """What a search found, which a kill and resume must not change: every candidate and its numbers, the front,
    the selections. Not the trial numbers and the counts of trials and failures: a trial running when the process
    died is failed and redone as a new trial, so the trials after it are numbered one later."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k != "trial"}
        if isinstance(value, list):
            items = [plain(v) for v in value]
            keyed = all(isinstance(v, dict) and "key" in v for v in items)
            return sorted(items, key=lambda v: v["key"]) if keyed and items else items
        return value

    kept = ("search", "baseline", "pareto", "selections", "hypervolume", "candidates")
    return plain({k: doc[k] for k in kept}) | {"evaluations": doc["counts"]["evaluations"]}


def _dead_pid(cwd: Path) -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], cwd=cwd, capture_output=True,
                          text=True, check=True, timeout=TIMEOUT_S)  # fmt: skip
    return int(proc.stdout)


@pytest.fixture(scope="module")
def search_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any], int]:
    """The tiny space, a warm price cache, and an uninterrupted run's result and journal size."""
    root = tmp_path_factory.mktemp("nas-crash")
    space = root / "tiny.yaml"
    space.write_text(yaml.safe_dump(TINY))
    cache = root / "cache"
    proc = subprocess.run(_tstack(*_search_args(space, str(root / "ref" / "study.journal"))), cwd=root,
                          env=_env(cache), capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    size = (root / "ref" / "study.journal").stat().st_size
    return root, cache, _search_result(json.loads(proc.stdout)), size


def _kill_when(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    ready: Callable[[], bool],
    delay_s: float = 0.0,
    poll_s: float = 0.005,
) -> bool:
    """Run `cmd`, SIGKILL it `delay_s` after `ready()` (checked every `poll_s`) first holds; False when it finished
    first."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                time.sleep(delay_s)
                if proc.poll() is not None:
                    return False
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=TIMEOUT_S)
                return True
            time.sleep(poll_s)
        assert proc.poll() is not None, f"`{' '.join(cmd[2:])}` neither finished nor reached its kill point"
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _has_bytes(path: Path, at_bytes: float) -> Callable[[], bool]:
    """Whether the file `path` has grown to `at_bytes` (a journal, as a kill point)."""
    return lambda: path.is_file() and path.stat().st_size >= at_bytes


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_search_killed_at_random_points_resumes_to_the_same_result(
    search_setup: tuple[Path, Path, dict[str, Any], int], absolute: bool
) -> None:
    root, cache, reference, ref_size = search_setup
    space = root / "tiny.yaml"
    kills = 0
    for i, fraction in enumerate(RNG.uniform(0.05, 0.9, size=3)):
        run_dir = root / f"{'abs' if absolute else 'rel'}-{i}"
        run_dir.mkdir()
        journal = run_dir / "out" / "study.journal"
        storage = str(journal) if absolute else "out/study.journal"
        cmd = _tstack(*_search_args(space, storage))
        kills += _kill_when(cmd, run_dir, _env(cache), _has_bytes(journal, int(fraction * ref_size)), poll_s=0.002)
        # the worst case a kill can leave, whatever this one left: the journal's lock held by a dead process
        lock = journal.with_name("study.journal.lock")
        if not os.path.lexists(lock):
            os.symlink(f"tstack-lock:{os.uname().nodename}:{_boot_id()}:{_dead_pid(run_dir)}:0", lock)
        proc = subprocess.run(cmd, cwd=run_dir, env=_env(cache), capture_output=True, text=True, timeout=TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr
        assert _search_result(json.loads(proc.stdout)) == reference
        assert _temp_files(run_dir) == []
    assert kills >= 1, "no kill landed inside a search; the kill points are too late"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def test_a_process_killed_while_holding_the_lock_does_not_block_the_resume(
    search_setup: tuple[Path, Path, dict[str, Any], int],
) -> None:
    """The exact failure of #19: a process SIGKILLed inside the lock. Killed by itself right after acquiring, so
    the kill lands inside the lock every time; then the old relative Optuna link (dangling) and a stale temp file."""
    root, cache, reference, _ = search_setup
    run_dir = root / "held"
    (run_dir / "out").mkdir(parents=True)
    code = (
        "import os, signal; from pathlib import Path; from tstack.nas.journal import JournalLock; "
        "JournalLock(Path('out/study.journal').resolve()).acquire(); os.kill(os.getpid(), signal.SIGKILL)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=run_dir, env=_env(cache), timeout=TIMEOUT_S)
    assert proc.returncode == -signal.SIGKILL
    assert os.path.lexists(run_dir / "out" / "study.journal.lock")
    junk = run_dir / "out" / f".checkpoint.pt.{_dead_pid(run_dir)}@{_host_tag()}.0123abcd.tmp"
    junk.write_bytes(b"\0" * (16 * 2**20))  # a killed checkpoint write
    cmd = _tstack(*_search_args(root / "tiny.yaml", "out/study.journal"))
    proc = subprocess.run(cmd, cwd=run_dir, env=_env(cache), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert _search_result(json.loads(proc.stdout)) == reference
    assert _temp_files(run_dir) == []


def _host_tag() -> str:
    from tstack.fileio import _host_tag

    return _host_tag()


def test_an_old_optuna_lock_with_a_relative_path_is_broken_not_spun_on(
    search_setup: tuple[Path, Path, dict[str, Any], int],
) -> None:
    """Optuna's own link `out/study.journal.lock -> out/study.journal` dangles (its target is relative to out/): an
    old one (past the grace period) is broken at start, where Optuna spun forever."""
    root, cache, reference, _ = search_setup
    run_dir = root / "optuna-link"
    (run_dir / "out").mkdir(parents=True)
    lock = run_dir / "out" / "study.journal.lock"
    os.symlink("out/study.journal", lock)
    old = time.time() - 3600
    os.utime(lock, (old, old), follow_symlinks=False)
    cmd = _tstack(*_search_args(root / "tiny.yaml", "out/study.journal"))
    proc = subprocess.run(cmd, cwd=run_dir, env=_env(cache), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert _search_result(json.loads(proc.stdout)) == reference
    assert _temp_files(run_dir) == []


# -- tstack study ----------------------------------------------------------------------------------------------------
STUDY = ["study", "--quick", "--seq", "128", "--only", "workload,gemmini", "--threads", "1"]


@pytest.mark.slow
@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_study_killed_at_random_points_resumes_to_the_same_document(tmp_path: Path, absolute: bool) -> None:
    env = _env(tmp_path / "cache")
    ref = subprocess.run(_tstack(*STUDY, "--out", str(tmp_path / "ref")), cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    reference = without_timings(json.loads((tmp_path / "ref" / "study.json").read_text()))
    for i, delay in enumerate(RNG.uniform(0.5, 4.0, size=2)):
        out = f"run-{i}"
        out_arg = str(tmp_path / out) if absolute else out
        proc = subprocess.Popen(_tstack(*STUDY, "--out", out_arg), cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            proc.wait(timeout=float(delay))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=TIMEOUT_S)
        # what a kill inside a write leaves: a temporary file of a dead process
        (tmp_path / out / "cache").mkdir(parents=True, exist_ok=True)
        junk = tmp_path / out / "cache" / f".gemmini.json.{_dead_pid(tmp_path)}@{_host_tag()}.0123abcd.tmp"
        junk.write_text("{half")
        resumed = subprocess.run(_tstack(*STUDY, "--out", out_arg, "--resume"), cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert without_timings(json.loads((tmp_path / out / "study.json").read_text())) == reference
        assert _temp_files(tmp_path / out) == []


STUDY_NAS = ["study", "--quick", "--only", "nas", "--threads", "1"]


def _study_journal(out: Path) -> Path | None:
    found = sorted(out.glob("work/nas/*/search.journal"))
    return found[0] if found else None


@pytest.fixture(scope="module")
def study_nas_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], int]:
    """An uninterrupted `study --quick --only nas`: its document (timings removed) and its search journal's size."""
    root = tmp_path_factory.mktemp("study-nas")
    proc = subprocess.run(_tstack(*STUDY_NAS, "--out", "ref"), cwd=root, env=_env(root / "cache"),
                          capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((root / "ref" / "study.json").read_text())
    assert doc["experiments"]["nas"]["error"] is None, doc["experiments"]["nas"]["error"]
    journal = _study_journal(root / "ref")
    assert journal is not None
    return root, without_timings(doc), journal.stat().st_size


@pytest.mark.slow
@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_study_nas_killed_in_training_and_in_search_resumes_to_the_same_document(
    study_nas_reference: tuple[Path, dict[str, Any], int], absolute: bool
) -> None:
    """The NAS experiment's own resume path: killed while training the supernet (after its first checkpoint), then
    killed in the search (at a seeded fraction of the reference's journal), each time resumed with --resume."""
    root, reference, ref_journal_bytes = study_nas_reference
    run = f"nas-{'abs' if absolute else 'rel'}"
    out = root / run
    out_arg = str(out) if absolute else run
    env = _env(root / "cache")
    rng = np.random.default_rng([19, int(absolute)])  # the same kill points whichever tests run before
    train_delay_s, search_fraction = float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.1, 0.9))

    def checkpointed() -> bool:
        return any(out.glob("work/nas/*/supernet/checkpoint.pt"))

    def searched() -> bool:
        journal = _study_journal(out)
        return journal is not None and journal.stat().st_size >= search_fraction * ref_journal_bytes

    kills = _kill_when(_tstack(*STUDY_NAS, "--out", out_arg), root, env, checkpointed, train_delay_s)
    kills += _kill_when(_tstack(*STUDY_NAS, "--out", out_arg, "--resume"), root, env, searched, 0.0)
    journal = _study_journal(out)
    assert journal is not None
    lock = journal.with_name(journal.name + ".lock")
    if not os.path.lexists(lock):  # the worst a kill can leave: the journal locked by a dead process
        os.symlink(f"tstack-lock:{os.uname().nodename}:{_boot_id()}:{_dead_pid(root)}:0", lock)
    resumed = subprocess.run(_tstack(*STUDY_NAS, "--out", out_arg, "--resume"), cwd=root, env=env,
                             capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert kills == 2, "a kill point was not reached before the run finished"
    assert without_timings(json.loads((out / "study.json").read_text())) == reference
    assert _temp_files(out) == []
