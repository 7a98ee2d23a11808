"""Two runs of one study at one seed give the same document apart from timestamps, timings and measurements (#19).

The second run is another process with another hash seed, so an order taken from a set or a dict of strings, a
global RNG or state left in torch by the first run would show; it reuses the shared study fixture as the first."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.study.comparable import without_timings

ROOT = Path(__file__).resolve().parents[2]
SECOND_RUN = """
import json, sys
from pathlib import Path
from tests.study.conftest import tiny_config
from tstack.studies.runner import run_study
doc = run_study(tiny_config(), Path(sys.argv[1]), only=json.loads(sys.argv[2]))
"""


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return [] if same else [f"{path}: {a!r:.60} != {b!r:.60}"]


@pytest.mark.slow
def test_two_runs_at_one_seed_write_the_same_study(fast_study: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    _, out = fast_study
    first = json.loads((out / "study.json").read_text(encoding="utf-8"))  # as written, as the second is read
    only = list(first["experiments"])
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SECOND_RUN, str(tmp_path), json.dumps(only)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    second = json.loads((tmp_path / "study.json").read_text(encoding="utf-8"))
    assert list(second["experiments"]) == only
    assert all(second["experiments"][n]["error"] is None for n in only), "an experiment failed; nothing compared"
    assert _differences(without_timings(first), without_timings(second)) == []
