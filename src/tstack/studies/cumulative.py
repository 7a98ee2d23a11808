"""The cumulative gain table (paper §1, §3.4.4, §6.4, §7): what each layer of the stack bought, multiplied out.

Every factor comes from this run's experiments; none is typed in. The paper's 88.7x multiplies a *latency* ratio
(39.6x, the hardware/software co-design) by an *EDP* ratio (2.24x, NAS); EDP = energy x delay, so that product is
neither a latency nor an EDP gain. The table therefore states three end-to-end figures, each a product of factors
of one definition: latency, energy and EDP, plus the paper's mixed definition for a like-for-like comparison.
"""

from __future__ import annotations

import math
from typing import Any

from tstack.studies import paper

NAME = "cumulative"
TITLE = "What each optimization bought"

METRICS = ("latency", "energy", "edp")


def _factor(
    step: str, source: str, gains: dict[str, float | None], paper_gains: dict[str, float | None]
) -> dict[str, Any]:
    return {"step": step, "source": source, "gains": gains, "paper": paper_gains}


def derive(data: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The table from the other experiments' data (`data[name]`); missing experiments leave their factor out.

    The paper's mixed figure multiplies the hardware factor by the NAS factor; both are kept as they are made, not
    found again by the wording of their labels."""
    factors = []
    hw: dict[str, Any] | None = None
    nas: dict[str, Any] | None = None
    g = data.get("gemmini")
    if g and "speedup_latency" in g:
        hw = _factor(
            "hardware + integer kernels",
            f"{g['model']} at l = {g['seq']}: {g['baseline']} -> {g['target']}",
            {"latency": g["speedup_latency"], "energy": g["gain_energy"], "edp": g["gain_edp"]},
            {"latency": paper.HARDWARE_SPEEDUP, "energy": None, "edp": None},
        )
        factors.append(hw)
    m = data.get("mapping")
    if m and "mapper" in m:
        mp = m["mapper"]
        factors.append(
            _factor(
                "mapping search",
                f"Gemmini's heuristic tiler -> exhaustive mapper on {mp['hardware']}",
                {"latency": mp["gain_latency"], "energy": mp["gain_energy"], "edp": mp["gain_edp"]},
                {"latency": None, "energy": None, "edp": None},  # the paper does not fold mapping into 88.7x
            )
        )
    n = data.get("nas")
    selected = n.get("selected", {}).get("0.1") if n else None
    if n and selected:
        nas = _factor(
            "NAS (+0.1 perplexity)",
            f"{n['space']} space on {n['hardware']}: lowest EDP within +0.1 perplexity of the baseline",
            {k: selected["gains"].get(k) for k in METRICS},
            {k: paper.NAS_GAINS[0.1][k] for k in METRICS},
        )
        factors.append(nas)
    end_to_end = {}
    for metric in METRICS:
        values = [f["gains"].get(metric) for f in factors]
        end_to_end[metric] = math.prod(v for v in values if v is not None) if factors else None
    mixed = hw["gains"]["latency"] * nas["gains"]["edp"] if hw and nas else None
    return {
        "factors": factors,
        "end_to_end": end_to_end,
        "paper_mixed": {
            "definition": "hardware latency ratio x NAS EDP ratio (the paper's 88.7x = 39.6 x 2.24)",
            "value": mixed,
            "paper": paper.END_TO_END,
        },
        "complete": hw is not None and nas is not None,
    }
