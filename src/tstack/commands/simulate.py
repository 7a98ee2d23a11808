"""`tstack simulate`, `compare` and `sweep`: a model on one hardware design, on several, and on a grid of designs
(documents, tables and figures in `tstack.report.simulate_doc` and `tstack.report.simulate_plots`).

Each estimates its work before starting (`tstack.commands.budget`) and refuses past the limit without
`--allow-slow`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tstack.commands.budget import (
    AllowSlowOption,
    WorkEstimate,
    named_workload,
    predicted_progress,
    refuse_if_slow,
    simulate_estimate,
)
from tstack.commands.common import (
    HwOption,
    ModelArgument,
    PhaseOption,
    SeqOption,
    emit_json,
    json_option,
    path_option,
    split_names,
)
from tstack.errors import TstackError
from tstack.fileio import confined, output_dir, safe_name

_out = Console()
_err = Console(stderr=True)


def estimate_simulation(
    model: str,
    hw: str,
    seq: int | None,
    phase: str | None,
    batch: int = 1,
    fused: bool = False,
    mapper: str = "gemmini",
) -> WorkEstimate | None:
    """The predicted time of `api.simulate` with these arguments; None when an argument is bad (the simulation
    itself then says what is wrong, in its own words)."""
    from tstack.mapping.matmul.mappers import parse_mapper

    workload = named_workload(model, hw, seq, phase, batch=batch, fused=fused)
    try:
        return None if workload is None else simulate_estimate(workload, parse_mapper(mapper))
    except TstackError:  # an unknown --mapper
        return None


def simulate(
    model: ModelArgument,
    hw: HwOption,
    seq: SeqOption = None,
    phase: PhaseOption = None,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 1,
    fused: Annotated[bool, typer.Option("--fused", help="CNNs: fold BatchNorm and fuse ReLU.")] = False,
    mapper: Annotated[str, typer.Option(help="Matmul tiles: gemmini (the heuristic) | exhaustive | cosa.")] = "gemmini",
    ops: Annotated[bool, typer.Option("--ops", help="List every op (table, or in --json).")] = False,
    as_json: Annotated[bool, json_option("tstack.simulate/2")] = False,
    plot: Annotated[Path | None, path_option("--plot", "Write the latency breakdown as a PNG to this folder.")] = None,
    allow_slow: AllowSlowOption = False,
) -> None:
    """Latency, utilization, energy and EDP of a model on a hardware design, by category (the paper's Fig. 14)."""
    from tstack.api import simulate as run_simulate
    from tstack.report.simulate_doc import ops_table, simulate_document, simulate_table, summary_line

    if plot is not None:
        output_dir(plot, "--plot")
    estimate = estimate_simulation(model, hw, seq, phase, batch, fused, mapper)
    slow = estimate is not None and refuse_if_slow(
        estimate, allow_slow, "simulate", "a shorter --seq, or --mapper gemmini"
    )
    with predicted_progress(estimate or WorkEstimate(0.0, ""), "simulating", show=slow):
        result = run_simulate(model, hw, seq, phase=phase, batch=batch, fused=fused, mapper=mapper)
    if plot is not None:
        from tstack.report.simulate_plots import breakdown_plot

        name = f"breakdown_{safe_name(result.workload.model_name)}_{safe_name(result.hardware.name)}.png"
        written = breakdown_plot([result], confined(plot, name))
        if not as_json:
            _out.print(f"wrote {written}")
    if as_json:
        emit_json(simulate_document(result, ops=ops))
        return
    _out.print(simulate_table(result))
    _out.print(summary_line(result))
    if ops:
        _out.print(ops_table(result))


def compare(
    model: ModelArgument,
    hw: Annotated[str, typer.Option("--hw", help="Comma-separated designs; speedups are over the first.")],
    seq: SeqOption = None,
    phase: PhaseOption = None,
    as_json: Annotated[bool, json_option("tstack.compare/1")] = False,
    plot: Annotated[
        Path | None, path_option("--plot", "Write the breakdown per design as a PNG to this folder.")
    ] = None,
    allow_slow: AllowSlowOption = False,
) -> None:
    """The case-study table: each design's latency, speedup over the first, utilization and breakdown."""
    from rich.progress import track

    from tstack.api import simulate as run_simulate
    from tstack.report.simulate_doc import compare_document, compare_table

    designs = split_names(hw)
    if not designs:
        raise TstackError("--hw needs at least one design, e.g. --hw gemmini-baseline,gemmini-ibert")
    if plot is not None:
        output_dir(plot, "--plot")
    one = estimate_simulation(model, designs[0], seq, phase)
    slow = one is not None and refuse_if_slow(
        one.times(len(designs), "designs"), allow_slow, "compare", "fewer designs, or a shorter --seq"
    )
    results = [
        run_simulate(model, d, seq, phase=phase)
        for d in track(
            designs, description="simulating", console=_err, disable=not (slow and _err.is_terminal), transient=True
        )
    ]
    if plot is not None:
        from tstack.report.simulate_plots import breakdown_plot

        written = breakdown_plot(results, confined(plot, f"compare_{safe_name(results[0].workload.model_name)}.png"))
        if not as_json:
            _out.print(f"wrote {written}")
    if as_json:
        emit_json(compare_document(results))
        return
    _out.print(compare_table(results))


def sweep(
    model: ModelArgument,
    hw: HwOption,
    set_: Annotated[
        list[str], typer.Option("--set", help="NAME=V1,V2,...: a memory level's capacity (64K, 2M) or pe=side.")
    ],
    seq: SeqOption = None,
    phase: PhaseOption = None,
    as_json: Annotated[bool, json_option("tstack.sweep/1")] = False,
    plot: Annotated[Path | None, path_option("--plot", "Two axes: write a heat map PNG to this folder.")] = None,
    allow_slow: AllowSlowOption = False,
) -> None:
    """Simulate a grid of designs (e.g. the paper's Fig. 13: accumulator x scratchpad)."""
    from rich.progress import track

    from tstack.api import simulate as run_simulate
    from tstack.report.simulate_doc import sweep_document, sweep_table
    from tstack.simulate.sweep import grid
    from tstack.spec.hardware import load_hardware
    from tstack.spec.sweep import parse_axis

    base = load_hardware(hw)
    axes = [parse_axis(text, base) for text in set_]
    seen: set[str] = set()
    for axis in axes:
        if axis.name in seen:
            raise TstackError(f"--set {axis.name} is given twice; give each name once, with all its values: "
                              f"--set {axis.name}=V1,V2")  # fmt: skip
        seen.add(axis.name)
    if plot is not None:
        if len(axes) != 2:
            raise TstackError("--plot draws a heat map of two --set axes; give exactly two")
        output_dir(plot, "--plot")
    points = grid(base, axes)
    one = estimate_simulation(model, hw, seq, phase)
    if one is not None:
        refuse_if_slow(
            one.times(len(points), "grid points"), allow_slow, "sweep", "fewer --set values, or a shorter --seq"
        )
    results = [
        (values, run_simulate(model, design, seq, phase=phase))
        for values, design in track(points, description="simulating", console=_err, disable=as_json)
    ]
    if plot is not None:
        from tstack.report.simulate_plots import sweep_heatmap

        written = sweep_heatmap(axes, results, confined(plot, f"sweep_{safe_name(base.name)}.png"))
        if not as_json:
            _err.print(f"wrote {written}")
    if as_json:
        emit_json(sweep_document(axes, results))
        return
    _out.print(sweep_table(axes, results))


def register(app: typer.Typer) -> None:
    """Add `simulate`, `compare` and `sweep` to the `tstack` app."""
    app.command()(simulate)
    app.command()(compare)
    app.command()(sweep)
