"""Behaviour unchanged, the study: `tstack study --quick` under two source trees gives the same `study.json` apart
from timestamps, timings and the CPU profile's measurements (issue 17's check for its refactors).

The baseline is a folder holding a `tstack` package (e.g. a `git worktree` of an older revision's `src/`); the other
is this working tree's `src/`. Both run with the same seed and thread count. Experiments or fields that exist in only
one document are listed (a new experiment is an addition, not a change); every shared field must be equal.

    .venv/bin/python benchmarks/study_same.py --base /tmp/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.study.comparable import without_timings  # noqa: E402


def run_study(src: Path, out: Path, threads: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-m", "tstack", "study", "--quick", "--threads", str(threads), "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    doc: dict[str, Any] = json.loads((out / "study.json").read_text())
    nas = doc.get("experiments", {}).get("nas", {}).get("data", {})
    if "points" in nas:  # listed by generation and key since issue 19 (by trial number before): compare as a set
        nas["points"] = sorted(nas["points"], key=lambda p: str(p.get("key")))
    return without_timings(doc)


def differences(a: Any, b: Any, where: str = "") -> tuple[list[str], list[str]]:
    """(fields that differ, fields present in only one document), as dotted paths."""
    if isinstance(a, dict) and isinstance(b, dict):
        changed: list[str] = []
        only = [f"{where}.{k}" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            c, o = differences(a[k], b[k], f"{where}.{k}")
            changed += c
            only += o
        return changed, only
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        changed, only = [], []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            c, o = differences(x, y, f"{where}[{i}]")
            changed += c
            only += o
        return changed, only
    return ([] if a == b else [where]), []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, type=Path, help="a folder holding the baseline tstack package")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = run_study(args.base, Path(tmp) / "base", args.threads)
        new = run_study(ROOT / "src", Path(tmp) / "new", args.threads)
    changed, only = differences(base, new)
    for path in only:
        print(f"only in one  {path}")
    for path in changed:
        print(f"differs      {path}")
    print(f"{len(changed)} shared fields differ; {len(only)} fields are in one document only")
    sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
