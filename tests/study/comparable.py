"""A study document with what may differ between two runs of the same study removed: timestamps, timings, whether
an experiment came from the cache, and the CPU profile's measurements (and what is derived from them). Every other
field is computed from the inputs and the seed, so two runs must agree on it exactly."""

from __future__ import annotations

import copy
from typing import Any

TIMESTAMPS = ("created_unix_s",)
PER_EXPERIMENT = ("seconds", "cached")  # wall time of the experiment; reused from the cache on --resume
PROFILE_MEASURED = ("device", "calibration")  # this CPU's measured rates, and their description
PROFILE_RUN_MEASURED = (
    "wall_min_s",
    "wall_median_s",
    "shares",  # of the profiled time per op class
    "coverage",  # of the profiled time classified
    "warnings",  # about the measured spread
    "normalized_latency",  # measured wall time over the reference's
    "predicted_shares",  # predicted from the measured calibration
)


def without_timings(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` less the fields listed above (a copy)."""
    out = copy.deepcopy(doc)
    for key in TIMESTAMPS:
        out.pop(key, None)
    for experiment in out.get("experiments", {}).values():
        for key in PER_EXPERIMENT:
            experiment.pop(key, None)
    profile = out.get("experiments", {}).get("profile", {}).get("data", {})
    for key in PROFILE_MEASURED:
        profile.pop(key, None)
    for run in profile.get("runs", []):
        for key in PROFILE_RUN_MEASURED:
            run.pop(key, None)
    return out
