"""The profiler's start/stop log lines stay out of stderr; everything else written there meanwhile is kept."""

from __future__ import annotations

import os
import sys

import pytest

from tstack.profile.quiet import without_native_lines


def test_native_noise_is_dropped_and_the_rest_kept(capfd: pytest.CaptureFixture[str]) -> None:
    with without_native_lines():
        os.write(2, b"USDT:2026-11-30 00:00:00 1:1 SyncActivityProfilerHandler.cpp:52] profiler_start\n")
        os.write(2, b"a native warning\n")
        print("a python message", file=sys.stderr)
    err = capfd.readouterr().err
    assert "USDT" not in err and "profiler_start" not in err
    assert "a native warning" in err and "a python message" in err


def test_stderr_is_restored_even_when_the_block_raises(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError), without_native_lines():
        os.write(2, b"before the error\n")
        raise ValueError("boom")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "before the error" in err and "after" in err


def test_quiet_profile_still_profiles(capfd: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity

    from tstack.profile.quiet import quiet_profile

    with quiet_profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.ones(8, 8) @ torch.ones(8, 8)
    assert any("mm" in e.name for e in prof.events())
    assert "USDT" not in capfd.readouterr().err
