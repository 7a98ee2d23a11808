"""`tstack profile` and `tstack calibrate`: real measurement of a model's latency, broken into op classes.

`register(app)` adds both commands to a Typer app. The JSON document (`--json`) has schema ``tstack.profile/1``:

    {"schema": "tstack.profile/1", "device": "cpu", "threads": 2, "phase": "encoder",
     "classes": [...measured classes...], "calibration": {...} | null,
     "normalized_to": {"model": ..., "seq_len": ..., "wall_min_s": ...},
     "profiles": [{"model": ..., "phase": ..., "results": [
        {"seq_len", "batch", "threads", "wall": {"min_s", "median_s", "max_s", "repeats"}, "profiled_s",
         "coverage", "normalized_latency", "classes": {class: {"time_s", "share"}},
         "unclassified": [{"name", "scope", "shapes", "time_s", "calls"}], "top_ops": [...same fields + "class"],
         "warnings": [...], "compare": null | {"method", "device", "predicted_s",
            "classes": {class: {"predicted_s", "measured_s", "predicted_share", "measured_share",
                                 "share_error_points"}}}}]}]}

Times are seconds per run (one forward; for `generate`, the whole generation of l tokens).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tstack.commands.common import parse_ints
from tstack.errors import TstackError
from tstack.fileio import output_dir, output_file, safe_name, write_atomic

if TYPE_CHECKING:
    from tstack.profile.calibrate import Calibration
    from tstack.profile.compare import Comparison
    from tstack.profile.measure import ProfileResult

SCHEMA = "tstack.profile/1"
_out = Console()
_err = Console(stderr=True)

_LABELS = {
    "mha_proj": "MHA proj.",
    "mha_act": "MHA act-to-act",
    "ffn_proj": "FFN proj.",
    "softmax": "Softmax",
    "norm": "Norm",
    "activation": "Activation",
    "residual": "Residual/elementwise",
    "data_movement": "Data movement",
    "other": "Other",
    "unclassified": "Unclassified",
}
_COLORS = {
    "mha_proj": "#4c72b0",
    "mha_act": "#dd8452",
    "ffn_proj": "#55a868",
    "softmax": "#c44e52",
    "norm": "#8172b3",
    "activation": "#937860",
    "residual": "#da8bc3",
    "data_movement": "#8c8c8c",
    "other": "#ccb974",
    "unclassified": "#000000",
}


def _require_torch() -> None:
    import importlib.util

    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise TstackError(
            f"profiling runs real PyTorch models, but {' and '.join(missing)} {'are' if len(missing) > 1 else 'is'} "
            f"not installed; "
            f"install them with: pip install torch==2.13.0 'tstack[ml]' (or your own torch build)"
        )


def _check_runs(threads: int | None, repeats: int, *, rounds: int = 1, warmup: int = 0) -> None:
    """Refuse counts that would measure nothing (or forever) before any model is built."""
    if threads is not None and not 1 <= threads <= 4096:
        raise TstackError(f"--threads must be between 1 and 4096, got {threads}")
    for option, value, low in (("--repeats", repeats, 1), ("--rounds", rounds, 1), ("--warmup", warmup, 0)):
        if not low <= value <= 10_000:
            raise TstackError(f"{option} must be between {low} and 10,000, got {value}")


def _parse_seq(text: str | None) -> list[int] | None:
    return parse_ints(text, "seq", "128,256,512")


def _parse_phase(text: str | None) -> Any:
    from tstack.workload import Phase

    if text is None:
        return None
    try:
        return Phase(text)
    except ValueError:
        raise TstackError(f"unknown phase {text!r}; choose one of: {', '.join(p.value for p in Phase)}") from None


def _op_doc(o: Any, with_class: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"name": o.name, "scope": o.scope, "shapes": o.shapes, "time_s": o.time_s, "calls": o.calls}
    if with_class:
        d["class"] = o.op_class
    return d


def _compare_doc(c: Comparison) -> dict[str, Any]:
    rates = None
    if c.calibration is not None:
        rates = {
            "attention_seq": c.calibration.attention_seq,
            "attention_matmul_flops_per_s": c.calibration.attention_matmul_flops_per_s,
            "softmax_elements_per_s": c.calibration.softmax_elements_per_s,
            "scale_elements_per_s": c.calibration.scale_elements_per_s,
        }
    return {
        "method": c.method,
        "device": c.device.name,
        "attention_rates": rates,
        "predicted_s": c.predicted_s,
        "classes": {
            r.op_class: {
                "predicted_s": r.predicted_s,
                "measured_s": r.measured_s,
                "predicted_share": r.predicted_share,
                "measured_share": r.measured_share,
                "share_error_points": r.share_error_points,
            }
            for r in c.classes
        },
    }


def profile_document(
    runs: Sequence[Sequence[ProfileResult]],
    comparisons: dict[tuple[int, int], Comparison],
    calibration: Calibration | None,
) -> dict[str, Any]:
    """The ``tstack.profile/1`` document of one or more models' results (see the module docstring)."""
    from tstack.profile import MEASURED_CLASSES

    first = runs[0][0]
    base = first.wall.min_s
    profiles = []
    for i, results in enumerate(runs):
        rows = []
        for j, r in enumerate(results):
            cmp = comparisons.get((i, j))
            rows.append(
                {
                    "seq_len": r.seq_len,
                    "batch": r.batch,
                    "threads": r.threads,
                    "wall": {
                        "min_s": r.wall.min_s,
                        "median_s": r.wall.median_s,
                        "max_s": r.wall.max_s,
                        "repeats": r.wall.repeats,
                    },
                    "profiled_s": r.profiled_s,
                    "coverage": r.coverage,
                    "normalized_latency": r.wall.min_s / base if base else None,
                    "classes": {c: {"time_s": t, "share": r.shares()[c]} for c, t in r.class_time_s},
                    "unclassified": [_op_doc(o) for o in r.unclassified()],
                    "top_ops": [_op_doc(o, with_class=True) for o in r.ops[:10]],
                    "warnings": list(r.warnings),
                    "compare": _compare_doc(cmp) if cmp is not None else None,
                }
            )
        profiles.append({"model": results[0].model.name, "phase": results[0].phase.value, "results": rows})
    cal = None
    if calibration is not None:
        cal = {
            "name": calibration.name,
            "threads": calibration.threads,
            "matmul_flops_per_s": calibration.matmul_flops_per_s,
            "attention_matmul_flops_per_s": calibration.attention_matmul_flops_per_s,
            "mem_bandwidth_bytes_per_s": calibration.mem_bandwidth_bytes_per_s,
            "softmax_elements_per_s": calibration.softmax_elements_per_s,
            "scale_elements_per_s": calibration.scale_elements_per_s,
        }
    return {
        "schema": SCHEMA,
        "device": first.device,
        "threads": first.threads,
        "phase": first.phase.value,
        "classes": list(MEASURED_CLASSES),
        "calibration": cal,
        "normalized_to": {"model": first.model.name, "seq_len": first.seq_len, "wall_min_s": base},
        "profiles": profiles,
    }


def _save_png(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    finally:
        plt.close(fig)
    return write_atomic(path, buf.getvalue())


def profile_plots(runs: Sequence[Sequence[ProfileResult]], out_dir: Path) -> list[Path]:
    """Normalized latency against sequence length (the paper's Fig. 9) and per model a stacked share bar chart
    per class against sequence length (Figs. 7-8). Files are written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tstack.profile import MEASURED_CLASSES

    written = []
    base = runs[0][0].wall.min_s
    fig, ax = plt.subplots(figsize=(6, 4))
    for results in runs:
        xs = [r.seq_len for r in results]
        ys = [r.wall.min_s / base for r in results]
        ax.plot(xs, ys, marker="o", label=f"{results[0].model.name} ({results[0].phase.value})")
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.3g}", (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length")
    first = runs[0][0]
    ax.set_ylabel(f"latency / {first.model.name} at l={first.seq_len}")
    ax.set_title(f"Normalized latency ({first.device}, {first.threads} threads)")
    ax.legend(fontsize=8)
    written.append(_save_png(fig, out_dir / "profile_normalized_latency.png"))
    for results in runs:
        fig, ax = plt.subplots(figsize=(6, 4))
        labels = [str(r.seq_len) for r in results]
        bottom = [0.0] * len(results)
        for cls in MEASURED_CLASSES:
            vals = [100.0 * r.shares()[cls] for r in results]
            if not any(vals):
                continue
            ax.bar(labels, vals, bottom=bottom, label=_LABELS[cls], color=_COLORS[cls])
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        m = results[0]
        ax.set_xlabel("sequence length")
        ax.set_ylabel("% of profiled time")
        ax.set_title(f"{m.model.name} ({m.phase.value}) latency breakdown")
        ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
        name = safe_name(m.model.name)
        written.append(_save_png(fig, out_dir / f"profile_breakdown_{name}_{m.phase.value}.png"))
    return written


def _tables(results: Sequence[ProfileResult], comparisons: dict[int, Comparison]) -> list[Table]:
    from tstack.profile import MEASURED_CLASSES

    m = results[0]
    t = Table(
        title=f"{m.model.name} {m.phase.value} on {m.device}, {m.threads} threads: share of profiled time",
        title_justify="left",
    )
    t.add_column("class")
    for r in results:
        t.add_column(f"l={r.seq_len}", justify="right")
    for c in MEASURED_CLASSES:
        t.add_row(_LABELS[c], *(f"{100 * r.shares()[c]:.1f}%" for r in results))
    t.add_row("wall min / median (ms)", *(f"{r.wall.min_s * 1e3:.1f} / {r.wall.median_s * 1e3:.1f}" for r in results))
    t.add_row("profiled op time (ms)", *(f"{r.profiled_s * 1e3:.1f}" for r in results))
    t.add_row("classified", *(f"{100 * r.coverage:.1f}%" for r in results))
    tables = [t]
    for j, cmp in comparisons.items():
        r = results[j]
        ct = Table(
            title=f"{m.model.name} l={r.seq_len}: predicted ({cmp.method}, {cmp.device.name}) vs measured",
            title_justify="left",
        )
        for col in ("class", "pred. ms", "meas. ms", "ratio", "pred. share", "meas. share", "error"):
            ct.add_column(col, justify="left" if col == "class" else "right")
        for row in cmp.classes:
            ratio = f"{row.time_ratio:.2f}" if row.measured_s else "-"
            ct.add_row(
                _LABELS[row.op_class],
                f"{row.predicted_s * 1e3:.2f}",
                f"{row.measured_s * 1e3:.2f}",
                ratio,
                f"{100 * row.predicted_share:.1f}%",
                f"{100 * row.measured_share:.1f}%",
                f"{row.share_error_points:+.1f} pt",
            )
        tables.append(ct)
    return tables


def profile(
    models: Annotated[list[str], typer.Argument(help="Preset names, model YAML files or HF config.json paths.")],
    seq: Annotated[str | None, typer.Option(help="Sequence lengths, comma-separated [128,256,512].")] = None,
    phase: Annotated[
        str | None,
        typer.Option(help="encoder | generate | prefill | decode (default: encoder, or generate for decoders)."),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda.")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="Torch intra-op threads (default: torch's).")] = None,
    repeats: Annotated[int, typer.Option(help="Timed repeats of each run (min and median reported).")] = 5,
    rounds: Annotated[int, typer.Option(help="Profiling rounds (each op's fastest round is kept).")] = 3,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up runs.")] = 2,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 1,
    compare: Annotated[
        bool, typer.Option("--compare", help="Put the roofline prediction beside the measurement per class.")
    ] = False,
    against: Annotated[
        str | None,
        typer.Option(help="With --compare: a device preset or YAML (plain roofline) instead of calibrating now."),
    ] = None,
    extend_positions: Annotated[
        bool, typer.Option("--extend-positions", help="Enlarge the position table for longer sequences.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.profile/1 JSON document.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write PNG plots (Figs. 7-9 style) to this folder.")] = None,
) -> None:
    """Measure a model on this CPU/GPU and break its latency into op classes (the paper's Figs. 7-9)."""
    _require_torch()
    from tstack.profile.calibrate import calibrate as run_calibrate
    from tstack.profile.compare import calibration_for
    from tstack.profile.compare import compare as run_compare
    from tstack.profile.measure import preflight
    from tstack.profile.measure import profile as run_profile
    from tstack.spec import load_device, load_model
    from tstack.workload import ModelSpec

    _check_runs(threads, repeats, rounds=rounds, warmup=warmup)
    if plot is not None:
        output_dir(plot, "--plot")
    seqs = _parse_seq(seq) or [128, 256, 512]
    the_phase = _parse_phase(phase)
    specs = []
    for m in models:
        spec = load_model(m)
        if not isinstance(spec, ModelSpec):
            raise TstackError(f"{m!r} is not a Transformer; tstack profile builds BERT-, GPT-2- and Llama-style models")
        preflight(spec, tuple(seqs), phase=the_phase, device=device, threads=threads, extend_positions=extend_positions)
        specs.append(spec)
    if against is not None:
        load_device(against)  # a bad device file fails before the measurement, not after
    runs = []
    for spec in specs:
        if not as_json:
            _err.print(f"profiling {spec.name} at l = {', '.join(map(str, seqs))} ...")
        runs.append(
            run_profile(
                spec,
                seqs,
                phase=the_phase,
                device=device,
                threads=threads,
                batch=batch,
                repeats=repeats,
                warmup=warmup,
                rounds=rounds,
                extend_positions=extend_positions,
            )
        )
    calibration = None
    comparisons: dict[tuple[int, int], Comparison] = {}
    if compare:
        if against is not None:
            dev = load_device(against)
            comparisons = {(i, j): run_compare(r, device=dev) for i, rs in enumerate(runs) for j, r in enumerate(rs)}
        else:
            calibration = run_calibrate(device=device, threads=threads)
            comparisons = {
                (i, j): run_compare(r, calibration=calibration_for(r, calibration))
                for i, rs in enumerate(runs)
                for j, r in enumerate(rs)
            }
    written = profile_plots(runs, plot) if plot is not None else []
    if as_json:
        sys.stdout.write(json.dumps(profile_document(runs, comparisons, calibration), indent=2) + "\n")
        return
    if calibration is not None:
        _out.print(f"calibrated: {calibration.describe()}")
    for i, results in enumerate(runs):
        for table in _tables(results, {j: c for (k, j), c in comparisons.items() if k == i}):
            _out.print(table)
        for r in results:
            for w in r.warnings:
                _err.print(f"warning: {r.model.name} l={r.seq_len}: {w}", markup=False)
            for o in r.unclassified()[:10]:
                _err.print(f"unclassified: {o.name} in {o.scope} {o.shapes}: {o.time_s * 1e3:.3f} ms", markup=False)
    for path in written:
        _out.print(f"wrote {path}")


def calibrate(
    device: Annotated[str, typer.Option(help="cpu | cuda.")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="Torch intra-op threads (default: torch's).")] = None,
    name: Annotated[str | None, typer.Option(help="Device name in the YAML [cpu-calibrated].")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the device YAML here (for analyze --device).")] = None,
    repeats: Annotated[int, typer.Option(help="Timed repeats of each microbenchmark (the best is kept).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.calibration/1 JSON document.")] = False,
) -> None:
    """Measure this machine's matmul throughput and memory bandwidth and store them as a roofline device."""
    _require_torch()
    from tstack.profile.calibrate import calibrate as run_calibrate
    from tstack.profile.calibrate import device_yaml, write_device

    _check_runs(threads, repeats)
    if out is not None:
        output_file(out, "--out")
        if out.suffix not in (".yaml", ".yml"):
            raise TstackError(f"--out {out} must end in .yaml or .yml so that --device can read it back")
    cal = run_calibrate(device=device, threads=threads, name=name, repeats=repeats)
    path = write_device(cal, out) if out is not None else None
    if as_json:
        doc = {
            "schema": "tstack.calibration/1",
            "name": cal.name,
            "device": cal.device,
            "threads": cal.threads,
            "matmul_flops_per_s": cal.matmul_flops_per_s,
            "attention_matmul_flops_per_s": cal.attention_matmul_flops_per_s,
            "mem_bandwidth_bytes_per_s": cal.mem_bandwidth_bytes_per_s,
            "softmax_elements_per_s": cal.softmax_elements_per_s,
            "scale_elements_per_s": cal.scale_elements_per_s,
            "path": str(path) if path else None,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    _out.print(cal.describe())
    if path is not None:
        _out.print(f"wrote {path}")
    else:
        _out.print(device_yaml(cal), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add `profile` and `calibrate` to the `tstack` app."""
    app.command(name="profile")(profile)
    app.command(name="calibrate")(calibrate)
