"""The lock of a journal file (Optuna's JournalFileBackend), made safe against a killed process.

Optuna's own lock is a symbolic link ``JOURNAL.lock -> JOURNAL`` made while a record is appended (milliseconds).
A process killed while holding it (SIGKILL, power loss) leaves the link behind. Optuna breaks such a lock after a
30 s grace period, but it times the grace by ``stat`` of the link's target, and with a relative journal path the
link dangles (its target is read relative to the link's folder), ``stat`` fails and Optuna retries at once, forever:
a resumed search spins at 100% CPU and never starts.

`JournalLock` keeps Optuna's link-based protocol (an atomic ``symlink``, interoperable on NFS) but writes its
owner into the link (``tstack-lock:HOST:BOOT:PID:TOKEN``) and breaks a lock when

- its owner ran on this machine since its last boot and is gone (or is an earlier process with this one's pid),
  at once; or
- its owner cannot be checked (another host, an Optuna-made or unreadable link) and it is older than
  `STALE_LOCK_S` (no append takes that long);

and it never waits more than `MAX_WAIT_S` for a live owner: then a one-line `SearchError` names the owner and the
lock file to delete. `clean_journal` applies the same rules when a search starts or resumes, and deletes the
leftovers of a killed break (``JOURNAL.lock*.rename``) and stale temporary files beside the journal.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from optuna.storages.journal._file import BaseJournalFileLock  # not re-exported; the base of its own locks

from tstack.errors import TstackError
from tstack.fileio import clean_stale_temp, process_alive

STALE_LOCK_S = 30.0  # Optuna's grace period: an append holds the lock for milliseconds
MAX_WAIT_S = 120.0  # longest wait for a lock whose owner is alive, before giving up with one line
_PREFIX = "tstack-lock"
_HELD: set[str] = set()  # tokens of the locks this process holds now (several storages may share a journal)
_HELD_GUARD = threading.Lock()


class JournalLockError(TstackError):
    """A journal's lock is held by a live process for longer than a search may wait."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _host() -> str:
    return socket.gethostname().replace(":", "_")


def lock_path(journal: Path) -> Path:
    """Where the lock of `journal` lives (Optuna's name, so plain Optuna processes exclude us and we them)."""
    return journal.with_name(journal.name + ".lock")


def _owner(lock: Path) -> tuple[str, str, int, str] | None:
    """(host, boot, pid, token) of a tstack-made lock; None for any other link (or none at all)."""
    try:
        text = os.readlink(lock)
    except OSError:
        return None
    parts = text.split(":")
    if len(parts) != 5 or parts[0] != _PREFIX or not parts[3].isdigit():
        return None
    return parts[1], parts[2], int(parts[3]), parts[4]


def lock_state(lock: Path, stale_after_s: float = STALE_LOCK_S) -> tuple[bool, str]:
    """(stale, who): whether the lock at `lock` may be broken now, and its owner in words for messages."""
    try:
        age = time.time() - lock.lstat().st_mtime
    except FileNotFoundError:
        return True, "nobody"
    owner = _owner(lock)
    if owner is not None:
        host, boot, pid, token = owner
        who = f"process {pid} on {host}"
        if host == _host() and boot == _boot_id():
            with _HELD_GUARD:
                ours = token in _HELD
            if pid == os.getpid():
                return not ours, who
            return not process_alive(pid), who
    else:
        who = "an unknown process (a lock not made by tstack)"
    return age > stale_after_s, f"{who}, {age:.0f} s ago"


def break_lock(lock: Path, stale_after_s: float = STALE_LOCK_S) -> bool:
    """Delete the lock at `lock` if it is stale; True when it is gone (broken here, or released meanwhile)."""
    stale, _ = lock_state(lock, stale_after_s)
    if not stale:
        return False
    try:
        seen: str | None = os.readlink(lock)
    except FileNotFoundError:
        return True
    except OSError:
        seen = None
    # move it aside before deleting: if another process broke it and took a fresh lock since we looked, the link
    # we moved is theirs, and it goes back (the window is microseconds; Optuna's own break has the same one)
    aside = lock.with_name(f"{lock.name}{uuid.uuid4().hex}.rename")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    moved: str | None = seen
    with contextlib.suppress(OSError):
        moved = os.readlink(aside)
    if moved is not None and moved != seen:
        with contextlib.suppress(OSError):
            os.symlink(moved, lock)
    with contextlib.suppress(OSError):
        os.unlink(aside)
    return moved == seen


class JournalLock(BaseJournalFileLock):
    """A journal's lock that is broken when its owner is gone and never waited on forever (see the module doc)."""

    def __init__(self, journal: Path, *, stale_after_s: float | None = None, max_wait_s: float | None = None) -> None:
        self.journal = journal
        self.lock = lock_path(journal)
        self.stale_after_s = STALE_LOCK_S if stale_after_s is None else stale_after_s
        self.max_wait_s = MAX_WAIT_S if max_wait_s is None else max_wait_s
        self._token: str | None = None

    def acquire(self) -> bool:
        token = uuid.uuid4().hex
        target = f"{_PREFIX}:{_host()}:{_boot_id()}:{os.getpid()}:{token}"
        deadline = time.monotonic() + self.max_wait_s
        sleep_s = 0.001
        while True:
            with _HELD_GUARD:
                try:
                    os.symlink(target, self.lock)
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise JournalLockError(
                        f"cannot lock the journal {self.journal}: {exc.strerror or exc}; check that its folder is "
                        "writable"
                    ) from None
                else:
                    _HELD.add(token)
                    self._token = token
                    return True
            if break_lock(self.lock, self.stale_after_s):
                sleep_s = 0.001
                continue
            if time.monotonic() > deadline:
                _, who = lock_state(self.lock, self.stale_after_s)
                raise JournalLockError(
                    f"the journal {self.journal} has been locked by {who} for over {self.max_wait_s:.0f} s; if no "
                    f"search is using it, delete {self.lock} and rerun"
                )
            time.sleep(sleep_s)
            sleep_s = min(sleep_s * 2, 0.05)

    def release(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        with _HELD_GUARD:
            _HELD.discard(token)
        try:
            mine = os.readlink(self.lock).endswith(":" + token)
        except OSError:
            return  # broken by another process that took us for dead: nothing of ours to remove
        if mine:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock)


def clean_journal(journal: Path, stale_after_s: float = STALE_LOCK_S) -> list[str]:
    """Before a search starts or resumes: break the journal's lock if stale, delete leftovers of a killed break and
    stale temporary files beside the journal. What was cleaned, in words (for tests and logs)."""
    cleaned: list[str] = []
    lock = lock_path(journal)
    if os.path.lexists(lock) and break_lock(lock, stale_after_s):
        cleaned.append(str(lock))
    for aside in journal.parent.glob(f"{journal.name}.lock*.rename") if journal.parent.is_dir() else ():
        try:
            age = time.time() - aside.lstat().st_mtime
            if age > stale_after_s or (_owner(aside) is not None and lock_state(aside, stale_after_s)[0]):
                aside.unlink()
                cleaned.append(str(aside))
        except OSError:
            continue  # removed by another cleaner meanwhile
    cleaned.extend(str(p) for p in clean_stale_temp(journal.parent))
    return cleaned
