"""`tstack profile` and `tstack calibrate`: real measurement of a model's latency, broken into op classes.

`register(app)` adds both commands to a Typer app. Their JSON documents (`--json`: ``tstack.profile/1``,
``tstack.calibration/1``), tables and figures are built in `tstack.report.profile_doc` and
`tstack.report.profile_plots`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from tstack.commands.common import json_option, parse_ints, path_option
from tstack.errors import TstackError
from tstack.fileio import output_dir, output_file
from tstack.report.profile_doc import SCHEMA, calibration_document, profile_document, profile_tables

__all__ = ["SCHEMA", "calibrate", "profile", "register"]

if TYPE_CHECKING:
    from tstack.profile.compare import Comparison

_out = Console()
_err = Console(stderr=True)


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
    as_json: Annotated[bool, json_option("tstack.profile/1")] = False,
    plot: Annotated[Path | None, path_option("--plot", "Write PNG plots (Figs. 7-9 style) to this folder.")] = None,
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
    written: list[Path] = []
    if plot is not None:
        from tstack.report.profile_plots import profile_plots

        written = profile_plots(runs, plot)
    if as_json:
        sys.stdout.write(json.dumps(profile_document(runs, comparisons, calibration), indent=2) + "\n")
        return
    if calibration is not None:
        _out.print(f"calibrated: {calibration.describe()}")
    for i, results in enumerate(runs):
        for table in profile_tables(results, {j: c for (k, j), c in comparisons.items() if k == i}):
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
    out: Annotated[
        Path | None, path_option("--out", "Write the device YAML here (for analyze --device).", "file")
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timed repeats of each microbenchmark (the best is kept).")] = 5,
    as_json: Annotated[bool, json_option("tstack.calibration/1")] = False,
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
        doc = calibration_document(cal, str(path) if path else None)
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
