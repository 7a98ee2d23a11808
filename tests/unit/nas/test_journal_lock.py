"""The journal lock (`tstack.nas.journal`) and the cleaning of stale temporary files (`tstack.fileio`): a lock or a
temporary file left by a dead process is removed, one of a live process is kept, and no wait is unbounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tstack.fileio import _host_tag, clean_stale_temp, temp_path, write_atomic

pytest.importorskip("optuna")

from tstack.nas.journal import (
    JournalLock,
    JournalLockError,
    _boot_id,
    _host,
    break_lock,
    clean_journal,
    lock_path,
    lock_state,
)


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    return int(proc.stdout)


def _plant(journal: Path, pid: int, token: str = "0") -> Path:
    lock = lock_path(journal)
    os.symlink(f"tstack-lock:{_host()}:{_boot_id()}:{pid}:{token}", lock)
    return lock


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old), follow_symlinks=False)


def test_a_lock_of_a_dead_process_is_broken_at_once(tmp_path: Path) -> None:
    lock = _plant(tmp_path / "j.journal", _dead_pid())
    assert lock_state(lock)[0]
    assert clean_journal(tmp_path / "j.journal") == [str(lock)]
    assert not os.path.lexists(lock)


def test_a_lock_of_an_earlier_process_with_this_pid_is_stale(tmp_path: Path) -> None:
    lock = _plant(tmp_path / "j.journal", os.getpid(), "not-held-by-us")
    assert lock_state(lock)[0]


def test_a_lock_of_a_live_process_is_kept_and_waited_on_for_a_bounded_time(tmp_path: Path) -> None:
    journal = tmp_path / "j.journal"
    lock = _plant(journal, os.getppid())  # alive for as long as this test runs
    assert not break_lock(lock)
    with pytest.raises(JournalLockError) as err:
        JournalLock(journal, max_wait_s=0.2).acquire()
    message = str(err.value)
    assert "\n" not in message and str(lock) in message and f"process {os.getppid()}" in message
    assert os.path.lexists(lock)


def test_a_lock_not_made_by_tstack_is_broken_only_when_old(tmp_path: Path) -> None:
    journal = tmp_path / "j.journal"
    lock = lock_path(journal)
    os.symlink("relative/target/that/dangles", lock)  # what Optuna's lock is with a relative journal path
    assert not break_lock(lock, stale_after_s=30)
    _age(lock, 60)
    assert break_lock(lock, stale_after_s=30)
    assert not os.path.lexists(lock)


def test_acquire_and_release_leave_nothing_and_release_spares_anothers_lock(tmp_path: Path) -> None:
    journal = tmp_path / "j.journal"
    lock = JournalLock(journal)
    assert lock.acquire()
    assert os.readlink(lock_path(journal)).startswith("tstack-lock:")
    assert not lock_state(lock_path(journal))[0]  # held by this process: not stale
    lock.release()
    assert not os.path.lexists(lock_path(journal))
    lock.acquire()
    os.unlink(lock_path(journal))
    theirs = _plant(journal, os.getppid())  # another process broke ours and holds its own
    lock.release()
    assert os.path.lexists(theirs)


def test_storage_paths_are_made_absolute_and_a_stale_lock_cleaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tstack.nas.search import open_storage

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    stale = _plant(tmp_path / "run" / "s.journal", _dead_pid())
    store = open_storage("run/s.journal")
    backend = store._backend  # type: ignore[attr-defined]
    assert Path(backend._file_path).is_absolute() and not os.path.lexists(stale)
    assert isinstance(backend._lock, JournalLock) and backend._lock.journal.is_absolute()


def test_stale_temporary_files_are_cleaned_and_live_ones_kept(tmp_path: Path) -> None:
    host = _host_tag()
    dead = tmp_path / f".ckpt.pt.{_dead_pid()}@{host}.0123abcd.tmp"
    live = tmp_path / f".ckpt.pt.{os.getppid()}@{host}.0123abcd.tmp"
    mine = tmp_path / f".ckpt.pt.{os.getpid()}@{host}.0123abcd.tmp"  # a run starting writes nothing yet
    other_host = tmp_path / f".ckpt.pt.{_dead_pid()}@elsewhere.0123abcd.tmp"
    foreign = tmp_path / ".notes.tmp"
    old_foreign = tmp_path / ".old.tmp"
    nested = tmp_path / "sub" / f".x.json.{_dead_pid()}@{host}.89abcdef.tmp"
    nested.parent.mkdir()
    for p in (dead, live, mine, other_host, foreign, old_foreign, nested):
        p.write_bytes(b"x")
    _age(old_foreign, 2 * 3600)
    removed = clean_stale_temp(tmp_path)
    assert sorted(removed) == sorted([dead, mine, old_foreign])
    assert live.exists() and other_host.exists() and foreign.exists() and nested.exists()
    assert clean_stale_temp(tmp_path, recursive=True) == [nested]


def test_atomic_writes_go_through_a_named_temporary_file_and_leave_none(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    assert temp_path(target).name.startswith(f".out.json.{os.getpid()}@")
    write_atomic(target, "{}")
    assert target.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
