"""Shared fixtures: small hardware designs built in code, so unit tests do not depend on presets."""

from __future__ import annotations

import pytest

from tstack.hardware.types import Dataflow, Hardware, HostCPU, MemoryLevel, PEArray, Tensor


def make_hardware(
    *,
    rows: int = 16,
    cols: int = 16,
    scratchpad_bytes: int = 256 * 1024,
    accumulator_bytes: int = 64 * 1024,
    bandwidth_bytes_per_cycle: float = 16.0,
    l2_bytes: int | None = None,
) -> Hardware:
    levels = [
        MemoryLevel(
            "accumulator",
            accumulator_bytes,
            bandwidth_bytes_per_cycle,
            1.25,
            1.25,
            frozenset({Tensor.OUTPUTS}),
            banks=2,
            word_bits=32,
            double_buffered=True,
        ),
        MemoryLevel(
            "scratchpad",
            scratchpad_bytes,
            bandwidth_bytes_per_cycle,
            1.25,
            1.25,
            frozenset({Tensor.INPUTS, Tensor.WEIGHTS}),
            banks=4,
            double_buffered=True,
        ),
    ]
    if l2_bytes:
        levels.append(MemoryLevel("l2", l2_bytes, 64.0, 2.5, 2.5, frozenset(Tensor)))
    levels.append(
        MemoryLevel("dram", 2**40, 64.0 if l2_bytes else bandwidth_bytes_per_cycle, 160.0, 160.0, frozenset(Tensor))
    )
    host = HostCPU((("softmax", 10.0),), 1.0, 1.0, 8.0, source="test fixture")
    return Hardware("test", 1e9, PEArray(rows, cols, Dataflow.WEIGHT_STATIONARY, 0.3), tuple(levels), host)


@pytest.fixture
def gemmini_like() -> Hardware:
    return make_hardware()
