"""The Gemmini host's measured kernels: `presets/host/rocket-kernels.json` read once and handed to the core as values.

`tstack.simulate.host_model` prices dynamic instruction counts with an in-order Rocket model; the counts themselves
are data (measured under qemu-user by `benchmarks/host_kernels/measure.py`), so this boundary module reads the file
and builds the `KernelCounts` the model takes. `predicted_host` is the model over the shipped measurement, the form a
hardware file's `predicted_from: rocket-kernels` and the studies use.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from tstack.hardware.types import HostCPU
from tstack.simulate.host_model import STREAM_BYTES, KernelCounts, PredictedHost, RocketTiming, host_from_counts

#: the data file of measured counts (relative to the `tstack.presets` package)
COUNTS_FILE = ("host", "rocket-kernels.json")


@cache
def _document() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(resources.files("tstack.presets").joinpath(*COUNTS_FILE).read_text())
    return raw


def _kernel(name: str, raw: dict[str, Any]) -> KernelCounts:
    return KernelCounts(
        name=name,
        elements=int(raw["elements"]),
        instructions=int(raw["instructions"]),
        instructions_blocks_method=int(raw["instructions_blocks_method"]),
        by_class=tuple(sorted((k, int(v)) for k, v in raw["by_class"].items())),
        calls=tuple(sorted((k, int(v)) for k, v in raw["calls"].items())),
        dependences=tuple(sorted((k, int(v)) for k, v in raw["dependences"].items())),
        branch_transitions=int(raw["branch_transitions"]),
        stream_bytes_per_element=STREAM_BYTES[name],
    )


@cache
def measured_counts() -> dict[str, KernelCounts]:
    """The measured counts of every kernel, from `presets/host/rocket-kernels.json`."""
    return {name: _kernel(name, k) for name, k in _document()["kernels"].items()}


def provenance() -> dict[str, Any]:
    """How the counts were produced: command, compiler flags, tool versions."""
    out: dict[str, Any] = dict(_document()["provenance"])
    return out


def predicted_host(base: HostCPU, timing: RocketTiming | None = None) -> PredictedHost:
    """`base` with every per-element cost predicted by the Rocket model over the shipped measured counts."""
    return host_from_counts(base, measured_counts(), timing)
