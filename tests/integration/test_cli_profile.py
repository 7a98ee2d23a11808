"""`tstack profile` / `tstack calibrate` through Typer: JSON document, plots, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="profiling needs the torch extra")
pytest.importorskip("transformers", reason="profiling needs the transformers extra")
import typer
import yaml
from typer.testing import CliRunner

from tstack.commands.profile import SCHEMA, register

TINY_BERT = {
    "name": "tiny-bert",
    "family": "encoder",
    "layers": 2,
    "d_model": 128,
    "heads": 2,
    "d_ff": 512,
    "vocab_size": 1000,
    "max_positions": 512,
    "type_vocab_size": 2,
    "embedding_norm": True,
    "pooler": True,
}
TINY_VIT = {
    "name": "tiny-vit",
    "family": "encoder",
    "layers": 1,
    "d_model": 64,
    "heads": 2,
    "d_ff": 128,
    "norm_placement": "pre",
    "vocab_size": 0,
    "max_positions": 0,
    "final_norm": True,
    "patch": {"image_px": 32, "patch_px": 16, "channels": 3},
}


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer(pretty_exceptions_enable=False)
    register(a)
    return a


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    path = tmp_path / "tiny-bert.yaml"
    path.write_text(yaml.safe_dump(TINY_BERT), encoding="utf-8")
    return str(path)


def test_profile_json_document_with_compare_and_plots(app: typer.Typer, tiny: str, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    args = ["profile", tiny, "--seq", "16,384", "--threads", "1", "--repeats", "2", "--rounds", "2"]
    res = CliRunner().invoke(app, [*args, "--compare", "--against", "xeon-gold-6242", "--json", "--plot", str(plots)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == SCHEMA
    assert doc["threads"] == 1
    (p,) = doc["profiles"]
    assert p["model"] == "tiny-bert"
    assert [r["seq_len"] for r in p["results"]] == [16, 384]
    for r in p["results"]:
        assert sum(c["share"] for c in r["classes"].values()) == pytest.approx(1.0)
        assert r["coverage"] >= 0.95
        assert r["wall"]["min_s"] <= r["wall"]["median_s"]
        cmp = r["compare"]
        assert cmp["device"] == "xeon-gold-6242"
        assert sum(c["predicted_share"] for c in cmp["classes"].values()) == pytest.approx(1.0)
        assert set(cmp["classes"]) >= {"mha_proj", "mha_act", "ffn_proj"}
    assert p["results"][0]["normalized_latency"] == pytest.approx(1.0)
    assert p["results"][1]["normalized_latency"] > 1.0  # 24x the tokens: clear of timing noise (16 vs 48 was not)
    pngs = sorted(f.name for f in plots.iterdir())
    assert pngs == ["profile_breakdown_tiny-bert_encoder.png", "profile_normalized_latency.png"]
    assert all((plots / n).read_bytes()[:4] == b"\x89PNG" for n in pngs)


def test_profile_human_output_has_tables(app: typer.Typer, tiny: str) -> None:
    res = CliRunner().invoke(app, ["profile", tiny, "--seq", "16", "--threads", "1", "--repeats", "1", "--rounds", "1"])
    assert res.exit_code == 0, res.output
    assert "FFN proj." in res.stdout and "classified" in res.stdout


def test_calibrate_writes_a_device_yaml(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "me.yaml"
    res = CliRunner().invoke(app, ["calibrate", "--threads", "1", "--repeats", "1", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["path"] == str(out)
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data["peak_tera_ops_per_s"][32] * 1e12 == pytest.approx(doc["matmul_flops_per_s"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # the real wiring: the tstack app with register() applied, and its main() turning errors into one line
    code = "from tstack import cli; from tstack.commands.profile import register; register(cli.app); cli.main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=False)


def _one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("USDT")]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_family_without_builder_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "vit.yaml"
    path.write_text(yaml.safe_dump(TINY_VIT), encoding="utf-8")
    _one_line_error(_cli("profile", str(path), "--seq", "5"), "no PyTorch builder")


def test_sequence_longer_than_positions_is_one_line(tiny: str) -> None:
    _one_line_error(_cli("profile", tiny, "--seq", "1000"), "--extend-positions")


def test_cuda_without_gpu_is_one_line(tiny: str) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    _one_line_error(_cli("profile", tiny, "--seq", "16", "--device", "cuda"), "no CUDA GPU")
