"""The installed `tstack` command: JSON documents, plots, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TSTACK = [sys.executable, "-m", "tstack.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TSTACK, *args], capture_output=True, text=True, timeout=120, check=False)


def test_console_script_is_installed() -> None:
    assert shutil.which("tstack") or Path(sys.executable).with_name("tstack").exists()


def test_analyze_json_table3_document() -> None:
    proc = run("analyze", "bert-base", "--seq", "128,512,4096", "--convention", "paper-2023", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "tstack.analyze/1"
    assert doc["params"] == 109_482_240
    assert [r["seq_len"] for r in doc["results"]] == [128, 512, 4096]
    r128 = doc["results"][0]
    assert set(r128["classes"]) == {"mha_proj", "mha_act", "ffn_proj", "other"}
    assert round(r128["classes"]["mha_proj"]["arithmetic_intensity"], 2) == 192.00
    assert round(r128["classes"]["ffn_proj"]["flops"] / 1e9, 2) == 14.50
    assert round(r128["total"]["arithmetic_intensity"], 2) == 159.68
    assert sum(c["flops_share"] for c in r128["classes"].values()) == pytest.approx(1.0)


def test_analyze_json_with_device_and_ops() -> None:
    proc = run("analyze", "llama-2-7b", "--seq", "2048", "--phase", "decode", "--device", "h100", "--ops", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    result = doc["results"][0]
    assert doc["device"]["name"] == "h100"
    assert result["roofline"]["compute_bound_share"] == 0.0
    assert result["kv_cache_bytes"] == 2 * 32 * 2048 * 4096
    names = [op["name"] for op in result["ops"]]
    assert "layer31.ffn.gate" in names and "layer0.attn.rope" in names


def test_resnet_json_has_fused_totals() -> None:
    doc = json.loads(run("analyze", "resnet50", "--json").stdout)
    assert set(doc["results"][0]["classes"]) == {"conv", "batchnorm", "relu", "other"}
    assert doc["fused"]["total"]["arithmetic_intensity"] > doc["results"][0]["total"]["arithmetic_intensity"]


def test_human_table_and_plots(tmp_path: Path) -> None:
    proc = run("analyze", "bert-base", "gpt2", "--seq", "128,256,512", "--plot", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "MHA proj." in proc.stdout and "109,482,240 parameters" in proc.stdout
    for name in (
        "flops.png",
        "mops.png",
        "arithmetic_intensity.png",
        "breakdown_bert-base.png",
        "breakdown_gpt2.png",
    ):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_models_lists_presets() -> None:
    doc = json.loads(run("models", "--json").stdout)
    assert doc["schema"] == "tstack.models/1"
    by_name = {m["name"]: m for m in doc["models"]}
    assert by_name["gpt2"]["params"] == 124_439_808 and by_name["resnet50"]["family"] == "cnn"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "bert-bas"], "unknown model preset 'bert-bas'; did you mean bert-base"),
        (["analyze", "bert-base", "--seq", "0"], "sequence length must be a positive integer, got 0"),
        (["analyze", "bert-base", "--seq", "-128"], "sequence length must be a positive integer"),
        (["analyze", "bert-base", "--seq", "12x"], "--seq expects comma-separated integers"),
        (["analyze", "bert-base", "--convention", "paper2023"], "unknown counting convention 'paper2023'"),
        (["analyze", "bert-base", "--device", "tpu"], "unknown device preset 'tpu'"),
        (["analyze", "gpt2", "--bits", "4", "--device", "a100"], "no peak for 4-bit operands"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_bad_config_files_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "bert", "hidden_size": 100, "num_attention_heads": 12}')
    unsupported = tmp_path / "t5" / "config.json"
    unsupported.parent.mkdir()
    unsupported.write_text('{"model_type": "t5"}')
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    for path, message in (
        (bad, "not divisible by 12 heads"),
        (unsupported.parent, "supported families"),
        (broken, "is not valid JSON"),
    ):
        proc = run("analyze", str(path))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
