"""Shared fixtures: small hardware designs built in code, so unit tests do not depend on presets."""

from __future__ import annotations

import pytest

from tstack.hardware.types import ARRAY, Dataflow, Hardware, HostCPU, Link, MemoryLevel, PEArray, Tensor


def make_hardware(
    *,
    rows: int = 16,
    cols: int = 16,
    scratchpad_bytes: int = 256 * 1024,
    accumulator_bytes: int = 64 * 1024,
    bandwidth_bytes_per_cycle: float = 16.0,
    l2_bytes: int | None = None,
    scratchpad_array_bytes_per_cycle: float | None = None,
    accumulator_array_bytes_per_cycle: float | None = None,
) -> Hardware:
    """A Gemmini-like design: `bandwidth_bytes_per_cycle` is the link filling both on-chip memories (from DRAM, or
    from the L2, which DRAM feeds at 64 B/cycle); links to the array only where given."""
    levels = [
        MemoryLevel(
            "accumulator",
            accumulator_bytes,
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
            1.25,
            1.25,
            frozenset({Tensor.INPUTS, Tensor.WEIGHTS}),
            banks=4,
            double_buffered=True,
        ),
    ]
    if l2_bytes:
        levels.append(MemoryLevel("l2", l2_bytes, 2.5, 2.5, frozenset(Tensor)))
    levels.append(MemoryLevel("dram", 2**40, 160.0, 160.0, frozenset(Tensor)))
    parent = "l2" if l2_bytes else "dram"
    links = [Link(parent, ("scratchpad", "accumulator"), bandwidth_bytes_per_cycle)]
    if l2_bytes:
        links.append(Link("dram", ("l2",), 64.0))
    if scratchpad_array_bytes_per_cycle is not None:
        links.append(Link("scratchpad", (ARRAY,), scratchpad_array_bytes_per_cycle))
    if accumulator_array_bytes_per_cycle is not None:
        links.append(Link("accumulator", (ARRAY,), accumulator_array_bytes_per_cycle))
    host = HostCPU((("softmax", 10.0),), 1.0, 1.0, 8.0, source="test fixture")
    pe = PEArray(rows, cols, Dataflow.WEIGHT_STATIONARY, 0.3)
    return Hardware("test", 1e9, pe, tuple(levels), tuple(links), host)


@pytest.fixture
def gemmini_like() -> Hardware:
    return make_hardware()
