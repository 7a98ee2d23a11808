"""The file boundary (tstack.fileio) and the API's own input checks: one `TstackError` line for every bad file or
value, strict JSON out, safe output names, atomic writes with the usual permissions (issue 19)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tstack.commands.common import emit_json, json_safe
from tstack.errors import SpecError, TstackError, WorkloadError
from tstack.fileio import (
    OutputError,
    confined,
    output_dir,
    output_file,
    parse_json,
    parse_yaml,
    read_text,
    read_yaml,
    safe_name,
    write_atomic,
)
from tstack.spec import load_model
from tstack.workload.analysis import MAX_SEQ_LEN, build_workload


def test_read_text_refuses_missing_folder_non_utf8_and_oversized(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        read_text(tmp_path / "nope.yaml", "model")
    with pytest.raises(SpecError, match="is a folder"):
        read_text(tmp_path, "model")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError, match=r"not UTF-8 text \(byte 9"):
        read_text(latin1, "model")
    with pytest.raises(SpecError, match="more than the 4 a model file may have"):
        read_text(latin1, "model", limit=4)


def test_unreadable_file_is_one_line_even_for_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permission bits do not stop root, so the refusal is simulated where the read happens."""
    path = tmp_path / "device.yaml"
    path.write_text("name: x\n", encoding="utf-8")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(SpecError, match=r"cannot read device file .*Permission denied; check its permissions"):
        read_yaml(path, "device")
    from tstack.spec import load_device
    from tstack.spec.hardware import load_hardware

    with pytest.raises(SpecError, match="Permission denied"):
        load_device(path)
    with pytest.raises(SpecError, match="Permission denied"):
        load_hardware(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [a", "not valid YAML"),
        ("!!python/object/apply:os.system ['true']", "not valid YAML"),
        ("[" * 20_000 + "]" * 20_000, "x.yaml"),
    ],
)
def test_parse_yaml_errors_are_one_line(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        parse_yaml(text, "x.yaml")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": ', "not valid JSON"),
        ('{"a": NaN}', "NaN is not JSON"),
        ('{"a": -Infinity}', "Infinity is not JSON"),
        ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    ],
)
def test_parse_json_errors_are_one_line(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        parse_json(text, "config.json")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["../../etc/passwd", "/abs/path", "..", ".", "", "a/../../b", "..\\..\\win", "name\x00nul", "x" * 300, "é/ü"],
)
def test_safe_name_is_one_plain_component(text: str, tmp_path: Path) -> None:
    name = safe_name(text)
    assert name and "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
    assert len(name) <= 80
    assert confined(tmp_path, name).parent == tmp_path


def test_safe_name_keeps_ordinary_names() -> None:
    assert [safe_name(n) for n in ("bert-base", "gpt2", "llama-2-7b", "gemmini_ibert.v2")] == [
        "bert-base",
        "gpt2",
        "llama-2-7b",
        "gemmini_ibert.v2",
    ]


def test_confined_refuses_a_path(tmp_path: Path) -> None:
    with pytest.raises(OutputError):
        confined(tmp_path, "../x.png")


def test_output_checks(tmp_path: Path) -> None:
    a_file = tmp_path / "f"
    a_file.write_text("x", encoding="utf-8")
    assert output_dir(tmp_path / "new" / "deeper", "--plot") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists(), "checking a folder must not create it"
    with pytest.raises(OutputError, match="existing file"):
        output_dir(a_file, "--plot")
    with pytest.raises(OutputError, match="is a file"):
        output_dir(a_file / "sub", "--plot")
    with pytest.raises(OutputError, match="system folder"):
        output_dir(Path("/proc/tstack"), "--plot")
    with pytest.raises(OutputError, match="is a folder"):
        output_file(tmp_path, "--export")
    with pytest.raises(OutputError, match="system path"):
        output_file(Path("/sys/tstack.yaml"), "--export")
    assert output_file(tmp_path / "x.yaml", "--export") == tmp_path / "x.yaml"


def test_write_atomic_shares_fsyncs_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    umask = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "out" / "x.png", b"\x89PNG")
    finally:
        os.umask(umask)
    assert path.read_bytes() == b"\x89PNG" and synced
    assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.png"]


def test_write_atomic_failure_is_an_output_error_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match="No space left on device"):
        write_atomic(tmp_path / "x.yaml", "a: 1\n")
    assert list(tmp_path.iterdir()) == []


def test_emit_json_is_strict_json(capsys: pytest.CaptureFixture[str]) -> None:
    emit_json({"x": float("inf"), "y": [float("nan"), 1.5], "path": "NaNo-Infinity.yaml"})
    out = capsys.readouterr().out
    assert json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c}")) == {
        "x": None,
        "y": [None, 1.5],
        "path": "NaNo-Infinity.yaml",
    }


def test_json_safe_leaves_strings_alone() -> None:
    """`study --json` once replaced NaN and Infinity inside strings too (a model path NaNo-Infinity.yaml)."""
    doc = {"model": "NaNo-Infinity.yaml", "gain": float("nan"), "rows": [{"edp": float("-inf")}]}
    assert json_safe(doc) == {"model": "NaNo-Infinity.yaml", "gain": None, "rows": [{"edp": None}]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seq_len": 12.5}, "sequence length must be a positive integer, got 12.5"),
        ({"seq_len": True}, "sequence length must be a positive integer"),
        ({"seq_len": "128"}, "sequence length must be a positive integer"),
        ({"seq_len": MAX_SEQ_LEN + 1}, "above tstack's limit"),
        ({"seq_len": 2**63}, "above tstack's limit"),
        ({"phase": "bogus"}, "unknown phase 'bogus'"),
        ({"batch": 0.5}, "batch must be a positive integer"),
        ({"batch": 2**40}, "above tstack's limit"),
        ({"bits": 8.0}, "bits must be between"),
    ],
)
def test_build_workload_refuses_bad_api_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        build_workload(load_model("bert-base"), **kwargs)  # type: ignore[arg-type]


def test_build_workload_accepts_a_phase_name_and_numpy_ints() -> None:
    import numpy as np

    w = build_workload(load_model("gpt2"), np.int64(64), phase="decode")  # type: ignore[arg-type]
    assert w.seq_len == 64 and type(w.seq_len) is int and w.phase.value == "decode"


def test_every_error_raised_here_is_a_tstack_error() -> None:
    assert issubclass(OutputError, TstackError)


def test_a_name_longer_than_the_file_system_takes_is_one_line(tmp_path: Path) -> None:
    """`Path.exists()` raises ENAMETOOLONG instead of answering False; the readers and output checks say it first."""
    from tstack.fileio import check_name_length, output_dir, output_file, read_text

    long = tmp_path / ("a" * 300)
    for call in (
        lambda: read_text(long, "model"),
        lambda: output_dir(long, "--plot"),
        lambda: output_file(long / "x.yaml", "--export"),
    ):
        with pytest.raises(TstackError, match="longer than the 255 a file name may have") as err:
            call()
        assert "\n" not in str(err.value)
    assert check_name_length(tmp_path / ("b" * 255), "x") == tmp_path / ("b" * 255)  # the limit itself is fine
