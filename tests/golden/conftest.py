"""Fixtures shared by the golden tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tstack.mapping.timeloop import run as tr
from tstack.spec.timeloop import preset_arch


@pytest.fixture(scope="session")
def timeloop_available() -> Path:
    """The bundled Timeloop's folder, once a probe run succeeds; else skip (or fail under TSTACK_REQUIRE_TIMELOOP=1,
    which `.ci/run` sets). A probe that runs but reports nothing (`TimeloopFailedError`) is a failure, not a skip."""
    try:
        folder = tr.locate_timeloop()
        tr.probe(folder, preset_arch("gemmini"))
    except tr.TimeloopUnavailableError as exc:
        why = f"the real Timeloop cannot run here: {exc}"
        if os.environ.get("TSTACK_REQUIRE_TIMELOOP") == "1":
            pytest.fail(f"{why} (TSTACK_REQUIRE_TIMELOOP=1)")
        pytest.skip(why)
    return folder
