"""The study report's co-design section (HTML), from the data of `tstack.studies.codesign`.

One table: the study's target design running the largest shape and each strategy's optimum (sequential, joint,
alternating), each with its design, shape, area, latency, energy, EDP, perplexity and EDP gain over the target; then
each strategy's hypervolume and counts, and a line on what every number is: predicted, and perplexity measured (the
study's NAS supernet) or the proxy surrogate, with the reason when it is the proxy.
"""

from __future__ import annotations

from html import escape
from typing import Any


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def codesign_section(d: dict[str, Any]) -> str:
    """The section's HTML (figure excluded: the report places it)."""
    rows = [
        [
            escape(p["label"]),
            f"<code>{escape(p['hardware_key'])}</code>",
            f"<code>{escape(p['arch'])}</code>",
            _fmt(p["area_mm2"], 3),
            _fmt(p["latency_cycles"]),
            _fmt(p["energy_pj"] / 1e6),
            _fmt(p["edp"]),
            _fmt(p["perplexity"]),
            f"{_fmt(p['gains']['edp'], 3)}×",
        ]
        for p in d["points"]
    ]
    measured = d.get("perplexity_source") == "measured"  # a study written before it was recorded used the proxy
    header = ["design", "hardware", "shape", "area (mm²)", "latency (cycles)", "energy (µJ)", "EDP (pJ·cycles)",
              f"perplexity ({'measured' if measured else 'proxy'})", f"EDP gain over {d['base']}"]  # fmt: skip
    srows = [
        [
            escape(name),
            _fmt(s["hypervolume_fraction"], 4),
            str(s["evaluated"]),
            str(s["feasible"]),
            str(len(s["front"])),
            "" if s["chosen_hardware"] is None else f"<code>{escape(s['chosen_hardware'])}</code>",
        ]
        for name, s in d["strategies"].items()
    ]
    sheader = ["strategy", "hypervolume (fraction of the box)", "evaluated", "feasible", "front", "hardware chosen"]
    ref = d["hypervolume_reference"]
    source = d["sources"]["perplexity"]
    limit_rule = f" ({escape(d['perplexity_limit_rule'])})" if d.get("perplexity_limit_rule") else ""
    rounds = f", alternating in {d['rounds']} rounds" if "rounds" in d else ""
    return "".join(
        [
            f"<p>Shape space <code>{escape(d['shape_space'])}</code> × hardware space "
            f"<code>{escape(d['hardware_space'])}</code> around {escape(d['base'])}; area budget "
            f"{_fmt(d['area_budget_mm2'], 3)} mm² ({escape(d['base'])}'s own area), perplexity limit "
            f"{_fmt(d['perplexity_limit'])}{limit_rule}; {d['evaluations']} evaluations per strategy "
            f"({escape(d['sampler'])}, seed {d['seed']}{rounds}).</p>",
            f"<p class='source'><b>Perplexity</b>: {escape(source)}.</p>",
            _table(header, rows),
            _table(sheader, srows),
            "<p class='why'>Latency, energy and EDP are predicted by the cost model of record with every design's "
            "per-access energies from the area model's component table (so the base design's EDP differs from the "
            "other sections', which use its hand energies); area is predicted by the component area model; "
            + (
                "perplexity is measured on held-out text (each shape's sub-network of the NAS section's supernet). "
                if measured
                else "perplexity is the proxy surrogate (decoder parameter count), not a measurement. "
            )
            + f"Hypervolumes are against one reference (EDP {_fmt(ref[0])}, area {_fmt(ref[1], 3)} mm², perplexity "
            f"{_fmt(ref[2])}), as the fraction of the box from (0, 0, the largest shape's perplexity) that the front "
            "dominates.</p>",
        ]
    )
