"""Host-CPU constants calibrated to a published latency breakdown (the paper's Fig. 14, left).

The host's cost per element of each op is not published; the paper gives only the share of baseline latency each
category takes (BERT-Base, l = 512, CNN-tuned Gemmini). Given tstack's own matmul latency on that design and the
element count of each category, the per-element cost that reproduces each share follows in closed form:
  cost[category] = share[category] * total / elements[category],  total = matmul latency / share[matmul].
The matmul share sets the host's absolute speed; see `gemmini-baseline.yaml` for the value used and why.
"""

from __future__ import annotations

from dataclasses import replace

from tstack.hardware.types import Hardware, HostCPU
from tstack.simulate.engine import simulate_workload
from tstack.workload.ops import Workload

# Kim, Hooper et al. 2023, Fig. 14 left: % of baseline latency (labels sum to 94; the text says 96% non-matmul)
FIG14_BASELINE_SHARES = {
    "matmul": 1.0,
    "softmax": 19.0,
    "layernorm": 4.0,
    "resadd": 11.0,
    "dequant": 49.0,
    "gelu": 10.0,
}
# host op names priced like a calibrated category (by the kind of work per element)
_ANALOGUES = {
    "add": "resadd",
    "batchnorm": "resadd",
    "avgpool": "resadd",
    "maxpool": "resadd",
    "relu": "resadd",
    "tanh": "gelu",
    "rmsnorm": "layernorm",
    "swiglu": "gelu",
    "rope": "resadd",
}


def calibrate_host(
    hw: Hardware, workload: Workload, matmul_share: float, shares: dict[str, float] | None = None
) -> dict[str, float]:
    """Per-element host cycles for each op name (and "dequantize") that reproduce `shares` on `workload`.

    `matmul_share` is the matmul fraction of total latency (e.g. 0.0175); the other categories keep their
    proportions from `shares` and fill the rest."""
    shares = dict(shares or FIG14_BASELINE_SHARES)
    shares.pop("matmul", None)
    names = {"softmax", "layernorm", "gelu", *_ANALOGUES}
    assert hw.host is not None, "calibration needs a host"
    unit = replace(
        hw,
        host=HostCPU(tuple((n, 1.0) for n in sorted(names)), 1.0, 1.0, 1e12, hw.host.energy_pj_per_cycle),
    )
    counted = simulate_workload(workload, unit)
    elements = counted.by_category()  # with unit costs, host cycles == elements processed
    total = counted.matmul_cycles() / matmul_share
    scale = (1.0 - matmul_share) / sum(shares.values())
    per_category = {c: share * scale * total / elements[c] for c, share in shares.items()}
    costs = {"softmax": per_category["softmax"], "layernorm": per_category["layernorm"], "gelu": per_category["gelu"]}
    costs |= {name: per_category[cat] for name, cat in _ANALOGUES.items()}
    costs["dequantize"] = per_category["dequant"]
    return costs
