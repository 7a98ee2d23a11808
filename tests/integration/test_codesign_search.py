"""`tstack codesign`: Ray equals in-process, a SIGKILLed search resumes without repeating or losing an evaluation
(the joint and the alternating strategies), the alternating strategy's budget and determinism, and bad input is one
line with exit code 2. Area comes from a stated linear model (`linear_area_mm2`) so these run without the component
area model. The measured (supernet) perplexity is in test_codesign_supernet.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from tstack.hardware.design import design_of
from tstack.hardware.types import Hardware

pytest.importorskip("optuna")

TINY = {"name": "tiny", "layers": [1, 2], "heads": [2, 4], "d_model": [16, 32], "d_ff": [32, 64], "head_dim": 8,
        "seq_len": 16, "vocab_size": 300}  # fmt: skip
HW_PARAMS = {"pe_rows": [8, 16], "pe_cols": [8, 16], "scratchpad_kib": [32, 64], "accumulator_kib": [64, 128],
             "l2_kib": [0, 256], "nonlinear_units": ["ibert", "none"]}  # fmt: skip
HW_SPACE = {"name": "small", "base": "gemmini-ibert", "parameters": HW_PARAMS}
TIMEOUT_S = 300
ROOT = Path(__file__).resolve().parents[2]


def linear_area_mm2(hw: Hardware) -> float:
    """Stated for tests: 0.002 mm^2 per PE, 2e-6 mm^2 per on-chip byte, 0.05 mm^2 for the I-BERT units."""
    d = design_of(hw)
    sram_bytes = sum(level.capacity_bytes for level in d.memories[:-1])
    return 0.002 * hw.pe.rows * hw.pe.cols + 2e-6 * sram_bytes + (0.05 if hw.activations is not None else 0.0)


_RUNNER = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import typer
from tstack.cli import _OneLineErrors
from tstack.commands import codesign
from tests.integration.test_codesign_search import linear_area_mm2
codesign.AREA_MODEL = linear_area_mm2
app = typer.Typer(cls=_OneLineErrors, add_completion=False)
codesign.register(app)
@app.callback()
def main() -> None: pass
app(sys.argv[1:], prog_name="tstack")
"""


def _files(tmp_path: Path) -> tuple[Path, Path]:
    shapes, hw = tmp_path / "tiny.yaml", tmp_path / "small.yaml"
    shapes.write_text(yaml.safe_dump(TINY))
    hw.write_text(yaml.safe_dump(HW_SPACE))
    return shapes, hw


def _args(tmp_path: Path, *extra: str) -> list[str]:
    shapes, hw = _files(tmp_path)
    return ["codesign", "--space", str(shapes), "--hardware-space", str(hw), "--area-budget", "1.0",
            "--perplexity-limit", "30", "--json", *extra]  # fmt: skip


def _env(tmp_path: Path) -> dict[str, str]:
    # Ray's workers import this module (the area model) by name: they need the repository on their path too
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = _env(tmp_path)
    return subprocess.run([sys.executable, "-c", _RUNNER, *args], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT_S, check=False, cwd=tmp_path)  # fmt: skip


def _found(doc: dict[str, Any]) -> Any:
    return sorted((c["hardware_key"], c["arch"], c["edp"], c["area_mm2"], c["perplexity"]) for c in doc["candidates"])


@pytest.mark.parametrize("strategy", ["joint", "sequential", "alternating"])
def test_a_search_on_local_ray_equals_the_in_process_search(tmp_path: Path, strategy: str) -> None:
    pytest.importorskip("ray")
    base = _args(tmp_path, "--strategy", strategy, "--evaluations", "8", "--batch", "4")
    local = _run(tmp_path, *base, "--storage", str(tmp_path / "local.journal"))
    assert local.returncode == 0, local.stderr
    remote = _run(tmp_path, *base, "--storage", str(tmp_path / "ray.journal"), "--ray", "local", "--workers", "2")
    assert remote.returncode == 0, remote.stderr
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert a["counts"]["proposals"] == b["counts"]["proposals"] == 8
    assert _found(a) == _found(b) and a["front"] == b["front"]


@pytest.mark.parametrize("strategy", ["joint", "alternating"])
def test_a_killed_search_resumes_without_repeating_or_losing_an_evaluation(tmp_path: Path, strategy: str) -> None:
    args = _args(tmp_path, "--strategy", strategy, "--evaluations", "12", "--batch", "3")
    whole = _run(tmp_path, *args, "--storage", str(tmp_path / "whole.journal"))
    assert whole.returncode == 0, whole.stderr
    journal = tmp_path / "killed.journal"
    env = _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, *args, "--storage", str(journal)], env=env,
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    target = (tmp_path / "whole.journal").stat().st_size // 2  # kill halfway through, by the journal's progress
    deadline = time.monotonic() + TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.exists() and journal.stat().st_size >= target:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=TIMEOUT_S)
    assert proc.returncode == -signal.SIGKILL  # killed halfway, not finished
    before = _complete_keys(journal)
    resumed = _run(tmp_path, *args, "--storage", str(journal))
    assert resumed.returncode == 0, resumed.stderr
    after = _complete_keys(journal)
    assert set(before) < set(after)  # no finished evaluation lost, and the rerun finished the rest
    evaluated = [k.partition(":")[2] for k, cached in after if not cached]
    assert len(evaluated) == len(set(evaluated))  # no candidate evaluated twice, in any phase
    assert _found(json.loads(resumed.stdout)) == _found(json.loads(whole.stdout))  # and the same search


def _complete_keys(journal: Path) -> list[tuple[str, bool]]:
    import optuna
    from optuna.trial import TrialState

    from tstack.nas.search import open_storage

    store = open_storage(journal, create=False)
    out = []
    for name in optuna.get_all_study_names(store):
        for t in optuna.load_study(study_name=name, storage=store).get_trials(states=(TrialState.COMPLETE,)):
            if "carried" not in t.user_attrs:  # an earlier phase's point, translated: not a proposal
                out.append((f"{name}:{t.user_attrs['slot']}:{t.user_attrs['key']}", "cached_from" in t.user_attrs))
    return out


def run_codesign_cli(args: list[str]) -> Result:
    """`tstack codesign` with `args` (starting with "codesign") in this process, with the linear area model, the
    entry's one-line error handling included."""
    from tstack.cli import _OneLineErrors
    from tstack.commands import codesign

    app = typer.Typer(cls=_OneLineErrors, add_completion=False)
    codesign.register(app)
    app.callback()(lambda: None)
    original = codesign.AREA_MODEL
    codesign.AREA_MODEL = linear_area_mm2
    try:
        return CliRunner().invoke(app, args)
    finally:
        codesign.AREA_MODEL = original


def _invoke(tmp_path: Path, *args: str) -> dict[str, Any]:
    """`tstack codesign ... --json` in this process, with the stated area model."""
    result = run_codesign_cli([*_args(tmp_path), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _studies(journal: Path) -> dict[str, tuple[int, int]]:
    """(proposals, carried trials) of each study in the journal."""
    import optuna
    from optuna.trial import TrialState

    from tstack.nas.search import open_storage

    store = open_storage(journal, create=False)
    out = {}
    for name in optuna.get_all_study_names(store):
        trials = optuna.load_study(study_name=name, storage=store).get_trials(states=(TrialState.COMPLETE,))
        carried = sum(1 for t in trials if "carried" in t.user_attrs)
        out[name.rpartition(":")[2]] = (len(trials) - carried, carried)
    return out


def test_the_alternating_strategy_spends_the_budget_in_rounds_and_is_deterministic(tmp_path: Path) -> None:
    args = ["--strategy", "alternating", "--evaluations", "19", "--batch", "2", "--rounds", "2"]
    a = _invoke(tmp_path, *args, "--storage", str(tmp_path / "a.journal"))
    b = _invoke(tmp_path, *args, "--storage", str(tmp_path / "b.journal"))
    assert a["counts"]["proposals"] == 19 and a["counts"]["failed"] == 0
    assert a["settings"]["rounds"] == 2
    assert _found(a) == _found(b) and a["front"] == b["front"] and a["chosen_hardware"] == b["chosen_hardware"]
    studies = _studies(tmp_path / "a.journal")
    # hardware share 0.5 of 19 = 10 proposals (5 + 5), shapes 9 (5 + 4): one study per phase
    assert {k: v[0] for k, v in studies.items()} == {"hardware.1": 5, "shape.1": 5, "hardware.2": 5, "shape.2": 4}
    # round 2 starts from what round 1 learnt: round 1's points enter its studies as carried trials
    assert studies["hardware.1"][1] == studies["shape.1"][1] == 0
    assert studies["hardware.2"][1] >= 1 and studies["shape.2"][1] >= 1
    assert studies == _studies(tmp_path / "b.journal")
    other = _invoke(tmp_path, *args, "--seed", "1", "--storage", str(tmp_path / "c.journal"))
    assert _found(other) != _found(a)  # the seed matters
    # the sequential strategy on the same budget: the same number of proposals
    seq = _invoke(tmp_path, "--strategy", "sequential", "--evaluations", "19", "--storage", "memory")
    assert seq["counts"]["proposals"] == a["counts"]["proposals"]


def test_a_resumed_alternating_search_needs_the_same_rounds(tmp_path: Path) -> None:
    journal = str(tmp_path / "r.journal")
    _invoke(tmp_path, "--strategy", "alternating", "--evaluations", "8", "--storage", journal)
    args = [*_args(tmp_path), "--strategy", "alternating", "--evaluations", "8", "--rounds", "1"]
    result = run_codesign_cli([*args, "--storage", journal])
    assert result.exit_code == 2 and "rounds=2" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--area-budget", "0.01"], "no design meets the area budget"),
        (["--perplexity-limit", "1"], "no shape meets the perplexity limit"),
        (["--strategy", "both"], "--strategy 'both' is not one of"),
        (["--perplexity", "supernet"], "--perplexity supernet needs --supernet PATH"),
        (["--strategy", "alternating", "--rounds", "0"], "at least 1 round"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, extra: list[str], message: str) -> None:
    result = run_codesign_cli([*_args(tmp_path), "--storage", "memory", *extra])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


BAD_FIELDS = [("banana", [1], "unknown parameter"), ("pe_rows", {"start": 8, "stop": 4, "step": 4}, "is empty")]


@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS)
def test_a_bad_hardware_space_file_is_one_line_and_exit_2(tmp_path: Path, field: str, value: Any, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"parameters": {field: value}}))
    result = _run(tmp_path, *_args(tmp_path), "--hardware-space", str(bad), "--storage", "memory")
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
