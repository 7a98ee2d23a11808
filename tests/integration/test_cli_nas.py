"""`tstack nas train | search | report` end to end on a tiny space, and bad input as one line + a non-zero exit."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import yaml

from tstack.cli import main

TINY = {
    "name": "tiny",
    "layers": [1, 2],
    "heads": [2, 4],
    "d_model": [16, 32],
    "d_ff": [32, 64],
    "head_dim": 8,
    "seq_len": 16,
    "vocab_size": 300,
}


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real entry point (errors become one line and exit code 2), in this process."""
    monkeypatch.setattr(sys, "argv", ["tstack", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _space(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def _one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in err


def test_search_report_and_plots_with_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    storage = str(tmp_path / "study.journal")
    args = ["nas", "search", "--objective", "proxy", "--space", str(_space(tmp_path)), "--population", "6"]
    code, out, err = run(monkeypatch, capsys, *args, "--iterations", "3", "--storage", storage, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "tstack.nas/1" and doc["search"]["algorithm"] == "evolution"
    assert doc["search"]["hardware"] == "gemmini-ibert" and doc["search"]["phase"] == "prefill"
    assert doc["baseline"]["key"] == "L2-d32-h4.4-f64.64" and doc["baseline"]["perplexity_source"] == "proxy"
    assert "surrogate" in doc["notes"]["perplexity"]
    assert [s["tolerance"] for s in doc["selections"]] == [0.1, 1.0]
    assert doc["selections"][1]["paper"] == {"latency": 2.4, "energy": 4.4, "edp": 10.56}
    assert all(s["gains"]["edp"] >= 1.0 for s in doc["selections"])
    assert doc["counts"]["evaluations"] == len(doc["candidates"])

    code, out, err = run(monkeypatch, capsys, "nas", "report", "--storage", storage, "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["selections"] == doc["selections"] and again["pareto"] == doc["pareto"]

    code, out, err = run(monkeypatch, capsys, "nas", "report", "--storage", storage, "--plot", str(tmp_path / "p"))
    assert code == 0, err
    words = " ".join(out.split())  # the console wraps at 80 columns here
    assert "Selected (Table 9)" in words and "10.56x)" in words, out
    assert sorted(p.name for p in (tmp_path / "p").glob("*.png")) == ["nas_fig25_latency_energy.png",
                                                                       "nas_fig26_edp.png"]  # fmt: skip


def test_train_then_search_with_the_supernet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tstack.nas.data import load_corpus

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    full = load_corpus(None)
    text = tmp_path / "small.txt"
    text.write_text(full.train_text[:8_000] + "\n\n" + full.valid_text[:2_000])
    space = str(_space(tmp_path))
    common = ["--space", space, "--corpus", str(text), "--out", str(tmp_path / "run"), "--steps", "2"]
    for extra in ([], ["--baseline"]):
        code, out, err = run(monkeypatch, capsys, "nas", "train", *common, "--threads", "1", *extra, "--json")
        assert code == 0, err
        assert json.loads(out)["checkpoint"].endswith("checkpoint.pt")
    run_dir = tmp_path / "run"
    code, out, err = run(
        monkeypatch, capsys, "nas", "search", "--checkpoint", str(run_dir / "supernet/checkpoint.pt"),
        "--baseline-checkpoint", str(run_dir / "baseline/checkpoint.pt"), "--corpus", str(text),
        "--population", "4", "--iterations", "2", "--max-tokens", "128", "--threads", "1",
        "--storage", str(tmp_path / "s.journal"), "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["search"]["objective"] == "supernet" and doc["search"]["space"]["name"] == "tiny"
    assert doc["baseline"]["perplexity_source"] == "stand-alone"
    assert all(1.0 < c["perplexity"] < 10 * TINY["vocab_size"] for c in doc["candidates"])  # type: ignore[operator]


def test_bad_input_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    proxy = ["nas", "search", "--objective", "proxy", "--storage", str(tmp_path / "s.journal")]
    # d = 48 with 5 heads cannot split evenly
    bad_space = _space(tmp_path, head_rule="split", d_model=[32, 48], heads=[2, 5])
    code, _, err = run(monkeypatch, capsys, *proxy, "--space", str(bad_space))
    _one_line_error(code, err, "head_rule split", "32 % 5 != 0")

    code, _, err = run(monkeypatch, capsys, "nas", "search", "--objective", "proxy", "--storage",
                       "postgresql://nobody:secret@127.0.0.1:1/x")  # fmt: skip
    _one_line_error(code, err, "postgresql://nobody:***@127.0.0.1:1/x")
    assert "secret" not in err

    pytest.importorskip("ray")
    start = time.monotonic()
    code, _, err = run(monkeypatch, capsys, *proxy, "--space", str(_space(tmp_path)), "--ray", "127.0.0.1:1")
    _one_line_error(code, err, "Ray at 127.0.0.1:1 does not answer")
    assert time.monotonic() - start < 30

    code, _, err = run(monkeypatch, capsys, "nas", "train", "--corpus", str(tmp_path / "missing.txt"))
    _one_line_error(code, err, "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n   \n")
    code, _, err = run(monkeypatch, capsys, "nas", "train", "--corpus", str(empty), "--out", str(tmp_path / "r"))
    _one_line_error(code, err)

    code, _, err = run(monkeypatch, capsys, "nas", "search", "--checkpoint", str(tmp_path / "none.pt"))
    _one_line_error(code, err, "does not exist", "--objective proxy")
    code, _, err = run(monkeypatch, capsys, "nas", "report", "--storage", str(tmp_path / "none.journal"))
    _one_line_error(code, err, "does not exist", "tstack nas search")  # and creates no journal
    code, _, err = run(monkeypatch, capsys, *proxy, "--algorithm", "annealing")
    _one_line_error(code, err, "unknown search algorithm")
