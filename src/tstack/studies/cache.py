"""The study's on-disk cache: one JSON file per finished experiment, so `--resume` redoes none of them.

A cached result is reused only when its key matches: the experiment's name, the study's settings and tstack's
version. Files are written atomically (temporary file, then rename), so an interrupted study leaves either a whole
result or none.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tstack import __version__
from tstack.fileio import write_atomic


def cache_key(experiment: str, settings: dict[str, Any]) -> str:
    text = json.dumps({"experiment": experiment, "settings": settings, "version": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StudyCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, experiment: str) -> Path:
        return self.directory / f"{experiment}.json"

    def load(self, experiment: str, key: str) -> dict[str, Any] | None:
        path = self._path(experiment)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("data"), dict):
            return None
        data: dict[str, Any] = entry["data"]
        return data

    def store(self, experiment: str, key: str, data: dict[str, Any], seconds: float) -> None:
        entry = {"key": key, "seconds": seconds, "data": data}
        write_atomic(self._path(experiment), json.dumps(entry, allow_nan=True))
