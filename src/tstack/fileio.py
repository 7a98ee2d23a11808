"""The file boundary: every input file is read here and every output path is checked here.

Reads turn a missing, unreadable, oversized or non-UTF-8 file into one `SpecError` line naming the file and the fix.
Writes are atomic (temporary file in the same folder, fsync, rename): an interrupted run leaves either the whole new
file or the old one, never half of one. Output names derived from input data (a model's or a design's name) go
through `safe_name`, so no name inside an input file can steer a write outside the folder the user gave."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from tstack.errors import SpecError, TstackError

# Far above any description tstack reads (the largest preset is a few KB, a HF config.json a few tens of KB); a
# bigger file is a wrong path (a checkpoint, a data set) that would otherwise be read into memory whole.
MAX_INPUT_BYTES = 64 * 2**20

# Folders of the kernel's virtual files: writing there either fails half-way or changes the running system.
_SYSTEM_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


class OutputError(TstackError):
    """An output path that cannot be written: an existing file where a folder is wanted, read-only, a system path."""


#: the longest file name (one path component) Linux file systems take; a longer one makes `stat` fail with
#: ENAMETOOLONG, which `Path.exists()` does not swallow
MAX_NAME_BYTES = 255


def check_name_length(path: Path, what: str, error: type[TstackError] = SpecError) -> Path:
    """`path`, or one line if a component is longer than a file system allows (before any `stat` raises on it)."""
    for part in path.parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise error(f"{what} {part[:40]}...: a name of {len(os.fsencode(part))} bytes is longer than the "
                        f"{MAX_NAME_BYTES} a file name may have; shorten it")  # fmt: skip
    return path


def read_text(
    path: Path | str, what: str, *, limit: int = MAX_INPUT_BYTES, error: type[TstackError] = SpecError
) -> str:
    """The UTF-8 text of the `what` file at `path`, or one line saying why it cannot be read and what to do."""
    path = check_name_length(Path(path), f"{what} file", error)
    if not path.exists():
        raise error(f"{what} file {path} does not exist; check the path")
    if path.is_dir():
        raise error(f"{what} file {path} is a folder; give the file itself")
    try:
        size = path.stat().st_size
        if size > limit:
            raise error(f"{what} file {path} has {size:,} bytes, more than the {limit:,} a {what} file may have")
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} file {path}: {exc.strerror or exc}; check its permissions") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} file {path} is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r}); "
            "save it as UTF-8"
        ) from None


def parse_yaml(text: str, origin: str, *, error: type[TstackError] = SpecError) -> Any:
    """`yaml.safe_load` of `text` (no tags that run code), with parse errors as one line naming `origin`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{origin} is not valid YAML: {_first_line(exc)}") from None
    except RecursionError:
        raise error(f"{origin} nests too deeply to be a description; flatten it") from None


def parse_json(text: str, origin: str, *, error: type[TstackError] = SpecError) -> Any:
    """`json.loads` of `text` with parse errors (and NaN/Infinity, which JSON does not have) as one line."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON; write a number or null")

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise error(f"{origin} is not valid JSON: {_first_line(exc)}") from None
    except ValueError as exc:
        raise error(f"{origin} is not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{origin} nests too deeply to be a description; flatten it") from None


def read_yaml(path: Path | str, what: str, *, error: type[TstackError] = SpecError) -> Any:
    """The YAML content of the `what` file at `path` (see `read_text` and `parse_yaml`)."""
    return parse_yaml(read_text(path, what, error=error), str(path), error=error)


def read_json(path: Path | str, what: str, *, error: type[TstackError] = SpecError) -> Any:
    """The JSON content of the `what` file at `path` (see `read_text` and `parse_json`)."""
    return parse_json(read_text(path, what, error=error), str(path), error=error)


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else type(exc).__name__


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """`text` as one harmless file-name component: letters, digits and `._+-` only, no leading dot, at most 80
    characters. `../../etc/x` becomes `etc_x`: a name from an input file can never climb out of a folder."""
    name = re.sub(r"_{2,}", "_", re.sub(r"\.{2,}", "_", _UNSAFE.sub("_", text))).strip("._-")[:80].strip("._-")
    return name or fallback


def _system_path(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in _SYSTEM_ROOTS)


def _writable_dir(folder: Path) -> bool:
    """Whether `folder` (or the first existing folder above it, where it would be created) takes new files."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def output_dir(path: Path, option: str) -> Path:
    """`path` checked as a folder to write into (created later, when something is written), or one line: an existing
    file, a read-only place or a system path is refused before any work is done."""
    if str(path).strip() == "":
        raise OutputError(f"{option} needs a folder name, got an empty one")
    check_name_length(path, option, OutputError)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is an existing file, not a folder; give a folder (it is created if new)")
    if _system_path(path):
        raise OutputError(f"{option} {path} is a system folder; write results to a folder of your own")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"{option} {path}: {blocker} is a file, not a folder; choose another folder")
    if not _writable_dir(path):
        raise OutputError(f"{option} {path} is not writable; choose a folder you can write to")
    return path


def output_file(path: Path, option: str) -> Path:
    """`path` checked as a file to (over)write, or one line: a folder, a read-only place, a system path or a missing
    parent folder is refused before any work is done."""
    if str(path).strip() == "" or path.name == "":
        raise OutputError(f"{option} needs a file name, got {str(path)!r}")
    check_name_length(path, option, OutputError)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name (e.g. {path / 'out.yaml'})")
    if _system_path(path):
        raise OutputError(f"{option} {path} is a system path; write results to a file of your own")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{option} {path} is read-only; choose another file")
    output_dir(path.parent, f"{option}'s folder")
    return path


def confined(folder: Path, name: str) -> Path:
    """`folder / name` for a `name` made by `safe_name` (or a fixed literal), checked to stay inside `folder`."""
    path = folder / name
    if Path(name).name != name or name in ("", ".", ".."):
        raise OutputError(f"refusing to write {name!r}: an output name must be a plain file name")
    return path


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Write `content` (text as UTF-8) to `path` through a temporary file in the same folder, fsync and a rename.

    The file gets the usual permissions (0666 minus the umask), not mkstemp's private 0600: results are meant to be
    shared. An `OSError` (disk full, read-only) becomes one `OutputError` line; no temporary file is left."""
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose another place") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose another place") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- temporary files of atomic writes, and cleaning up after a killed run -----------------------------------------
# A temporary file is `.NAME.PID@HOST.RANDOM.tmp` beside its target: a later run can tell whose it was. One left
# by a process that is gone (SIGKILL, power loss) is garbage; one of a live process may be a write in progress.
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9._-]*)\.[0-9a-f]{8}\.tmp$")
# a temporary file this old is garbage whoever made it: the largest write tstack makes (a checkpoint) takes seconds
STALE_TEMP_AGE_S = 3600.0


def _host_tag() -> str:
    return safe_name(socket.gethostname(), "host")[:32]


def temp_path(path: Path) -> Path:
    """The temporary file beside `path` that an atomic write of `path` goes through (see `clean_stale_temp`)."""
    return path.with_name(f".{path.name}.{os.getpid()}@{_host_tag()}.{uuid.uuid4().hex[:8]}.tmp")


def process_alive(pid: int) -> bool:
    """Whether a process `pid` runs on this machine (one we may not signal counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0
    return True


def stale_temp(path: Path, now: float | None = None) -> bool:
    """Whether `path` is a temporary file of an atomic write that will never finish: made on this machine by a
    process that is gone (or by an earlier process with this one's pid: nothing is written while a run starts), or
    older than `STALE_TEMP_AGE_S` whoever made it. A `.tmp` file of another shape is left alone unless that old."""
    if not path.name.startswith(".") or not path.name.endswith(".tmp"):
        return False
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except OSError:
        return False
    if age > STALE_TEMP_AGE_S:
        return True
    m = _TEMP.match(path.name)
    if m is None or m["host"] != _host_tag():
        return False
    pid = int(m["pid"])
    return pid == os.getpid() or not process_alive(pid)


def clean_stale_temp(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Delete the stale temporary files (see `stale_temp`) in `folder` (and below, with `recursive`); the paths
    deleted. Called when a run starts or resumes, so a killed run leaves no orphaned half-written file for long.
    Errors (a file another cleaner removed first, a read-only folder) are ignored: cleaning is best effort."""
    if not folder.is_dir():
        return []
    removed: list[Path] = []
    try:
        candidates = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
        for path in candidates:
            if path.is_file() and not path.is_symlink() and stale_temp(path):
                try:
                    path.unlink()
                except OSError:
                    continue
                removed.append(path)
    except OSError:
        pass
    return removed
