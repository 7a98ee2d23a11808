"""The study's report: one self-contained HTML file (figures embedded as data URIs, no network to view it).

It opens with the headline (where the time goes, what each optimization bought, the end-to-end gain), then one
section per experiment: its figures and tables that put tstack's number beside the paper's, with the difference
and, where they differ, why.
"""

from __future__ import annotations

import base64
import math
import time
from pathlib import Path
from typing import Any

from tstack.fileio import write_atomic
from tstack.report.codesign_section import codesign_section
from tstack.report.html_parts import diff as _diff
from tstack.report.html_parts import esc as _esc
from tstack.report.html_parts import num as _num
from tstack.report.html_parts import pct as _pct
from tstack.report.html_parts import table as _table
from tstack.report.study_gemmini_html import gemmini_section
from tstack.report.study_plots import FigureFile, render_figures

# Why tstack's numbers differ from the paper's, where they do (the measured differences are in the tables).
WHY = {
    "gflops": "paper-2023 convention: projections and act-to-act matmuls count as the paper does; the paper "
    "rounds to whole GFLOPs, and its BERT-Large figure omits one d x d projection per layer (pinned in tests).",
    "table3": "Table 3 cells match to the printed digits except the paper's own inconsistencies (tests/golden).",
    "resnet": "no natural ResNet-50 layer list gives the paper's 7.26 conv GFLOPs (proven in tests/golden); "
    "tstack uses Table 12's blocks.",
    "cpu": "a different CPU and thread count than the paper's Intel Xeon Gold 6242: compare trends, not values.",
    "mapspace": "the paper sampled Timeloop's Gemmini mapspace with Timeloop's model; its exact mapspace settings, "
    "energy tables and DRAM bandwidth are not published. tstack's default samples the divisor tilings of the whole "
    "array with double buffering and a fill/drain per tile. Under Timeloop's model the statistics are decided by how "
    "spatial factors are drawn: the readings that unroll the whole array (nest) give a lower 10th percentile and a "
    "larger share within 3x than the paper; every mapspace a published Timeloop file describes draws them freely "
    "(timeloop: the Gemmini repo's; nest-free: DOSA's random-search mapspace, from the paper's lab) and gives the "
    "reverse; the paper's numbers lie between, and none is fitted (benchmarks/RESULTS-mapping.md, sections B and D-F).",
    "fusion": "Q x K + Softmax follows the paper (the unfused int32 scores round trip is what fusion saves). In "
    "tstack's model W_out and W2 pay the same relative price for the forced full-row tile (their weights are re-read "
    "once per row block), so they differ only by the LayerNorm round trip saved; the paper's -4% and +27% together "
    "need a larger price and a costlier unfused LayerNorm than one DMA bandwidth gives (at the predicted 7.7 B/cycle "
    "W_out + LN at 256 kB is -7%, W2 + LN +4%; at the calibrated 5 B/cycle +30% and +55%).",
    "nas": "the cpu space is the paper's Table 8 shape scaled to train in minutes on 2 cores, on a public-domain "
    "corpus rather than WikiText-2, and priced at its own sequence length; the paper's gains are for its full "
    "space at 512 tokens after 50 epochs.",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d1d1f;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #e5e5e5;padding-bottom:.2em;margin-top:2em}
.meta{color:#666;font-size:.9em}
.headline{background:#f5f8ff;border:1px solid #c9d7f5;border-radius:8px;padding:1em 1.4em}
.headline .big{font-size:1.6em;font-weight:600}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}th{background:#fafafa}
td.l,th.l{text-align:left}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
.why{color:#555;font-size:.85em;max-width:900px}
.err{color:#b00020}
"""


def _why(key: str) -> str:
    return f'<p class="why"><b>Why they differ:</b> {_esc(WHY[key])}</p>'


def _figure(f: FigureFile) -> str:
    data = base64.b64encode(f.png.read_bytes()).decode()
    return (
        f'<figure id="fig-{f.name}"><img alt="{_esc(f.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_esc(f.title)} — {_esc(f.caption)} (<code>figures/{f.svg.name}</code>)</figcaption></figure>"
    )


# -- sections ----------------------------------------------------------------------------------------------------


def _workload(d: dict[str, Any]) -> str:
    rows = []
    for s in d["series"]:
        for r in s["rows"]:
            rows.append(
                [
                    _esc(s["model"]),
                    str(r["seq"]),
                    _num(r["gflops"], 4),
                    _num(r["paper_gflops"]),
                    _diff(r["gflops"], r["paper_gflops"]),
                    _num(r["ai"], 4),
                    _num(r["paper_ai"]),
                    _diff(r["ai"], r["paper_ai"]),
                ]
            )
    out = [
        f"<p>Counted under the <code>{_esc(d['convention'])}</code> convention (8-bit operands, a MAC is 2 FLOPs).</p>",
        _table(["model", "l", "GFLOPs", "paper", "diff", "AI", "paper", "diff"], rows, left=1),
        _why("gflops"),
    ]
    if d["table3"]:
        cols = d["table3_columns"]
        t3 = []
        for r in d["table3"]:
            for name, ours, theirs in zip(cols, r["ai"], r["paper_ai"], strict=True):
                t3.append([str(r["seq"]), _esc(name), _num(ours, 5), _num(theirs, 5), _diff(ours, theirs)])
        out += ["<h3>Table 3: arithmetic intensity of BERT-Base per op class</h3>"]
        out += [_table(["l", "class", "tstack", "paper", "diff"], t3, left=2), _why("table3")]
    cnn = d["resnet50"]
    p = cnn["paper"]
    out += [
        "<h3>Table 4: ResNet-50, the CNN contrast</h3>",
        _table(
            ["quantity", "tstack", "paper", "diff"],
            [
                [k, _num(cnn[k], 4), _num(p[k], 4), _diff(cnn[k], p[k])]
                for k in ("gflops", "gmops", "ai_unfused", "ai_fused")
            ],
        ),
        _why("resnet"),
    ]
    return "".join(out)


def _profile(d: dict[str, Any]) -> str:
    c = d["calibration"]
    rows = []
    for r in d["runs"]:
        top = sorted(r["shares"].items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            [
                _esc(r["model"]),
                _esc(r["phase"]),
                str(r["seq"]),
                _num(r["wall_min_s"] * 1e3, 4),
                _num(r["normalized_latency"]),
                _num(r["paper_normalized_latency"]),
                _pct(r["coverage"]),
                _esc(", ".join(f"{k} {100 * v:.0f}%" for k, v in top)),
            ]
        )
    warn = [w for r in d["runs"] for w in r["warnings"]]
    return "".join(
        [
            f"<p>Device: {_esc(d['device'])}. Calibrated fp32 GEMM {c['gemm_gflops']:.1f} GFLOP/s, attention "
            f"matmul {c['attention_gflops']:.1f} GFLOP/s, copy {c['copy_gb_per_s']:.1f} GB/s.</p>",
            _table(
                ["model", "phase", "l", "min wall (ms)", "normalized", "paper (Fig. 9)", "classified", "top classes"],
                rows,
                left=2,
            ),
            _why("cpu"),
            "".join(f'<p class="why">Warning: {_esc(w)}</p>' for w in warn[:5]),
        ]
    )


def _readings(ops: list[dict[str, Any]]) -> str:
    """The same statistics under Timeloop's model for each reading of its Gemmini mapspace (absent in old runs)."""
    names = [r["semantics"] for r in ops[0].get("readings", [])] if ops else []
    if not names:
        return ""
    rows = [
        [_esc(s["op"])]
        + [
            f"{_num(r['p10'])} / {_pct(r['within_3x'])} / {_num(r['span'])}" if "p10" in r else "n/a"
            for r in s["readings"]
        ]
        + [f"{_num(s['paper_p10'])} / {_pct(s['paper_within_3x'])}"]
        for s in ops
    ]
    return (
        "<p>The same statistics (p10 / within 3× / span) under Timeloop's model, for three readings of its Gemmini "
        "mapspace: <code>timeloop</code> (the Gemmini repo's mapspace.yaml), <code>nest</code> (multi-level loop "
        "nests, the whole array unrolled) and <code>nest-free</code> (any spatial factor: DOSA's random-search "
        "mapspace).</p>" + _table(["op", *names, "paper"], rows)
    )


def _timeloop_side_by_side(ops: list[dict[str, Any]]) -> str:
    """Paper, real Timeloop on Gemmini's published files (measured) and tstack's timeloop-ids reading (predicted)."""
    rows = []
    source = ""
    for s in ops:
        t = s.get("timeloop")
        if not t:
            continue
        m, pr = t["measured"], t["predicted"]
        source = m["source"]
        rows.append(
            [
                _esc(s["op"]),
                f"{_num(s['paper_p10'])} / {_pct(s['paper_within_3x'])}",
                f"{_num(m['p10'])} ± {_num(m['p10_stderr'], 2)} / {_pct(m['within_3x'])} ± "
                f"{_pct(m['within_3x_stderr'])} / {_num(m['span'])}",
                f"{_num(pr['p10'])} / {_pct(pr['within_3x'])} / {_num(pr['span'])}" if "p10" in pr else "n/a",
            ]
        )
    if not rows:
        return ""
    return (
        "<p>Side by side (p10 / within 3× / span, relative to the best of the samples): the paper's Figs. 18-19; "
        "<b>real Timeloop</b> (measured: its random mapper, 100,000 valid mappings, on Gemmini's published Timeloop "
        "files, arch_default.yaml and mapspace.yaml, with its built-in energies; ± one bootstrap standard error; "
        f"{_esc(source)}); and tstack's <code>timeloop-ids</code> reading of the same files (predicted: Timeloop's "
        "mapping-ID draw, factorization × permutation × spatial split × bypass, priced by the nest model with "
        "Timeloop's per-access energies). <b>The paper's values are out of reach of every published artefact</b>: "
        "the Timeloop of the paper's time run on Gemmini's own files lands ~4.6× above its 10th percentile and at a "
        "fifth of its share within 3×, and no other published Timeloop description of Gemmini comes closer on both "
        "(the readings above); nothing is fitted to them.</p>"
        + _table(["op", "paper", "real Timeloop (measured)", "tstack timeloop-ids (predicted)"], rows)
    )


def _fits(r: dict[str, Any]) -> bool:
    """Whether the fused tiling fit the memories (a study.json from before the `fits` field holds an infinity)."""
    return bool(r.get("fits", all(x is not None and math.isfinite(x) for x in r["fused_cycles"])))


def _fusion_change(r: dict[str, Any]) -> str:
    if not _fits(r):
        return "–"
    text = f"{100 * r['change']:+.0f}%"
    if r.get("paper_of_matmul") and r.get("matmul_change") is not None:
        text += f" (matmul {100 * r['matmul_change']:+.0f}%)"
    return text


def _mapping(d: dict[str, Any]) -> str:
    rows = [
        [
            _esc(s["op"]),
            "×".join(map(str, s["shape"])),
            f"{s['valid_mappings']:,}",
            f"{s['samples']:,}",
            _num(s["p10"]),
            _num(s["paper_p10"]),
            _pct(s["within_3x"]),
            _pct(s["paper_within_3x"]),
            _num(s["span"]),
            _num(s["heuristic_relative_edp"]),
        ]
        for s in d["mapspace"]
    ]
    m = d["mapper"]
    out = [
        f"<p>Mapspace on {_esc(d['mapspace_hardware'])}: random valid mappings per op, EDP relative to the exhaustive "
        "optimum (Figs. 18-19).</p>",
        _table(
            ["op", "M×N×K", "valid mappings", "samples", "p10", "paper", "within 3×", "paper", "span", "Gemmini tiler"],
            rows,
        ),
        _readings(d["mapspace"]),
        _timeloop_side_by_side(d["mapspace"]),
        _why("mapspace"),
        f"<p>On the whole model ({_esc(m['hardware'])}), the exhaustive mapper vs Gemmini's heuristic tiler: "
        f"latency {_num(m['gain_latency'], 4)}×, energy {_num(m['gain_energy'], 4)}×, "
        f"EDP {_num(m['gain_edp'], 4)}×.</p>",
    ]
    if d["fusion"]:
        frows = [
            [
                _esc(r["pair"]),
                str(r["seq"]),
                f"{r['accumulator_kb']} kB",
                _num(sum(r["non_fused_cycles"]) / 1e6, 4),
                _num(sum(r["fused_cycles"]) / 1e6, 4) if _fits(r) else "does not fit",
                _fusion_change(r),
                "–"
                if r["paper_change"] is None
                else f"{'matmul ' if r.get('paper_of_matmul') else ''}{100 * r['paper_change']:+.0f}%",
            ]
            for r in d["fusion"]
        ]
        out += [
            f"<h3>Fusion on {_esc(d['fusion_hardware'])} (Figs. 21-22)</h3>",
            _table(["pair", "l", "accumulator", "non-fused (10^6 cyc)", "fused", "change", "paper"], frows),
            _why("fusion"),
        ]
    elif d.get("fusion_note"):
        out.append(f'<p class="why">Fusion study not run: {_esc(d["fusion_note"])}</p>')
    return "".join(out)


def _nas(d: dict[str, Any]) -> str:
    base = d["baseline"]
    rows = []
    for tol, sel in sorted(d["selected"].items(), key=lambda kv: float(kv[0])):
        if sel is None:
            rows.append([f"+{tol}", "no candidate within tolerance", "", "", "", "", "", ""])
            continue
        g, p = sel["gains"], sel.get("paper", {})
        rows.append(
            [
                f"+{tol}",
                f"<code>{_esc(sel['key'])}</code>",
                _num(sel["perplexity"], 4),
                f"{_num(g['latency'])}× ({_num(p.get('latency'))}×)",
                f"{_num(g['energy'])}× ({_num(p.get('energy'))}×)",
                f"{_num(g['edp'])}× ({_num(p.get('edp'))}×)",
            ]
        )
    return "".join(
        [
            f"<p>Space <code>{_esc(d['space'])}</code> on {_esc(d['hardware'])} at l = {d['seq']}; "
            f"{d['evaluated']} candidates evaluated by {_esc(d['algorithm'])} search; supernet trained "
            f"{d.get('train_steps', '?')} steps on {_esc(d.get('corpus', '?'))}. "
            f"Baseline <code>{_esc(base['key'])}</code> perplexity {_num(base['perplexity'], 4)} "
            f"({_esc(base.get('source', ''))}). Pareto front spans "
            f"{_num(d.get('front_edp_span'))}× in EDP.</p>",
            _table(
                [
                    "tolerance",
                    "selected",
                    "perplexity",
                    "latency gain (paper)",
                    "energy gain (paper)",
                    "EDP gain (paper)",
                ],
                rows,
                left=2,
            ),
            _why("nas"),
            _undertrained(d),
        ]
    )


def _undertrained(d: dict[str, Any]) -> str:
    """Say so when the baseline (the largest model) is not the most accurate: the supernet is undertrained, and the
    selections then buy hardware cost with no perplexity given up, which inflates the gains."""
    best = min(p["perplexity"] for p in d["points"])
    base = d["baseline"]["perplexity"]
    if base <= best + 0.1:
        return ""
    return (
        f'<p class="why"><b>Caution:</b> the baseline (the largest model, perplexity {_num(base, 4)}) is not the most '
        f"accurate candidate (best {_num(best, 4)}): after {d.get('train_steps', '?')} training steps the supernet is "
        "far from converged, so these gains overstate what a trained model would give. Run the default or --full "
        "scale for a converged comparison.</p>"
    )


def _cumulative(c: dict[str, Any]) -> str:
    rows = []
    for f in c["factors"]:
        g, p = f["gains"], f["paper"]
        rows.append(
            [_esc(f["step"]), _esc(f["source"])]
            + [
                f"{_num(g.get(m))}×" + (f" ({_num(p.get(m))}×)" if p.get(m) else "")
                for m in ("latency", "energy", "edp")
            ]
        )
    e = c["end_to_end"]
    rows.append(["<b>end to end</b>", "product of the factors above, one definition per column"]
                + [f"<b>{_num(e.get(m))}×</b>" for m in ("latency", "energy", "edp")])  # fmt: skip
    mixed = c["paper_mixed"]
    note = (
        f"<p>The paper's 88.7× is {_esc(mixed['definition'])}. The same product in this run: "
        f"<b>{_num(mixed['value'])}×</b> (paper {mixed['paper']}×). It mixes a latency ratio with an EDP ratio, so "
        "the columns above state each definition separately.</p>"
    )
    if not c.get("complete"):
        note += '<p class="why">Some factors are missing because their experiment was not run or failed.</p>'
    return _table(["step", "measured as", "latency (paper)", "energy", "EDP (paper)"], rows, left=2) + note


_METRICS = ("latency", "energy", "edp")


def _top_class(run: dict[str, Any]) -> tuple[str, float]:
    name, share = max(run["shares"].items(), key=lambda kv: kv[1])
    return str(name), float(share)


_SECTIONS = {
    "workload": _workload,
    "profile": _profile,
    "gemmini": gemmini_section,
    "mapping": _mapping,
    "nas": _nas,
    "codesign": codesign_section,
}


def _headline(doc: dict[str, Any]) -> str:
    ex = {k: v["data"] for k, v in doc["experiments"].items() if "error" not in v["data"]}
    items = []
    g = ex.get("gemmini")
    if g:
        base = g["designs"][0]
        host = 1 - base["category_shares"].get("matmul", 0.0)
        items.append(
            f"On <b>{_esc(g['baseline'])}</b>, {_esc(g['model'])} at l = {g['seq']} spends <b>{_pct(host)}</b> of its "
            f"time outside the matmuls (nonlinear ops and de/quantization on the host CPU); the PE array is "
            f"{_pct(base['utilization'])} utilized."
        )
    p = ex.get("profile")
    if p and p["runs"]:
        first = p["runs"][0]
        last = max((r for r in p["runs"] if r["model"] == first["model"]), key=lambda r: r["seq"])
        (c1, s1), (c2, s2) = _top_class(first), _top_class(last)
        items.append(
            f"On this CPU, {_esc(first['model'])} at l = {first['seq']} spends most time in <b>{_esc(c1)}</b> "
            f"({_pct(s1)}); at l = {last['seq']}, <b>{_esc(c2)}</b> ({_pct(s2)})."
        )
    c = doc["cumulative"]
    for f in c["factors"]:
        items.append(f"<b>{_esc(f['step'])}</b> bought {_num(f['gains']['latency'])}× latency and "
                     f"{_num(f['gains']['edp'])}× EDP ({_esc(f['source'])}).")  # fmt: skip
    e = c["end_to_end"]
    big = (
        f'<p class="big">End to end: {_num(e.get("latency"))}× latency, {_num(e.get("edp"))}× EDP '
        f"(paper: {c['paper_mixed']['paper']}×, a latency × EDP product; the same product here: "
        f"{_num(c['paper_mixed']['value'])}×)</p>"
        if c["factors"]
        else ""
    )
    if doc["config"]["scale"] == "quick":
        big += (
            '<p class="why"><b>--quick</b>: small sweeps and a supernet trained for a few dozen steps; the NAS '
            "factor (and so the end-to-end figure) is not a number to quote. Run the default scale for that.</p>"
        )
    return (
        '<section class="headline" id="headline"><h2>Headline</h2>'
        + big
        + "<ul>"
        + "".join(f"<li>{i}</li>" for i in items)
        + "</ul></section>"
    )


def render_report(doc: dict[str, Any], out_dir: Path) -> Path:
    """Write figures (PNG + SVG) under `out_dir/figures` and the report `out_dir/report.html`; return its path."""
    figures = render_figures(doc, out_dir / "figures")
    by_exp: dict[str, list[FigureFile]] = {}
    for f in figures:
        by_exp.setdefault(f.experiment, []).append(f)
    cfg = doc["config"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>tstack study: {_esc(cfg['model'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>Full-stack study of {_esc(cfg['model'])}</h1>",
        f"<p class='meta'>{_esc(cfg['hw_baseline'])} → {_esc(cfg['hw_target'])}, l = {cfg['seq']}, scale "
        f"{_esc(cfg['scale'])}, tstack {_esc(doc['tstack_version'])}, "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(doc['created_unix_s']))}. Paper: Kim, Hooper et al., "
        "<i>Full Stack Optimization of Transformer Inference</i> (2023).</p>",
        _headline(doc),
    ]
    for name, entry in doc["experiments"].items():
        parts.append(f"<section id='{_esc(name)}'><h2>{_esc(entry['title'])}</h2>")
        seconds = "from the cache" if entry["cached"] else f"{entry['seconds']:.1f} s"
        parts.append(f"<p class='meta'>{seconds}</p>")
        if entry["error"]:
            parts.append(f"<p class='err'>Not run: {_esc(entry['error'])}</p></section>")
            continue
        parts += [_figure(f) for f in by_exp.get(name, [])]
        parts.append(_SECTIONS[name](entry["data"]))
        parts.append("</section>")
    if doc["cumulative"]["factors"]:
        parts.append("<section id='cumulative'><h2>What each optimization bought</h2>")
        parts += [_figure(f) for f in by_exp.get("cumulative", [])]
        parts.append(_cumulative(doc["cumulative"]) + "</section>")
    parts.append("</body></html>")
    path = out_dir / "report.html"
    write_atomic(path, "".join(parts))
    return path
