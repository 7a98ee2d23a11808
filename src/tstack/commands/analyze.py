"""`tstack analyze`: FLOPs, memory operations and arithmetic intensity per operator class (documents and figures in
`tstack.report.json_doc`, `tstack.report.tables` and `tstack.report.plots`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tstack.commands.budget import AllowSlowOption, WorkEstimate, analyze_estimate, predicted_progress, refuse_if_slow
from tstack.commands.common import emit_json, json_option, parse_ints, path_option
from tstack.errors import TstackError
from tstack.fileio import output_dir

_out = Console()


def _estimate(models: Sequence[str], seqs: list[int] | None, phase: str | None, batch: int) -> WorkEstimate | None:
    """The predicted time of counting every model at every given length; None when an input is bad (the run itself
    then says what is wrong) or no length was given (the paper's, at most 4,096, are always quick)."""
    from tstack.api import _parse_phase, _spec
    from tstack.workload import ModelSpec, build_workload

    if not seqs:
        return None
    try:
        workloads = []
        for m in models:
            spec = _spec(m)
            if isinstance(spec, ModelSpec):
                the_phase = _parse_phase(phase, spec)
                workloads += [build_workload(spec, s, phase=the_phase, batch=batch) for s in seqs]
    except TstackError:
        return None
    return analyze_estimate(workloads)


def analyze(
    models: Annotated[
        list[str] | None, typer.Argument(help="Preset names, model YAML files or HF config.json paths [bert-base].")
    ] = None,
    seq: Annotated[str | None, typer.Option(help="Sequence lengths, comma-separated (default 128..4096).")] = None,
    phase: Annotated[
        str | None,
        typer.Option(help="encoder | generate | prefill | decode (default: encoder, or generate)."),
    ] = None,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 1,
    bits: Annotated[int, typer.Option(help="Bits per element of every tensor (the paper: 8).")] = 8,
    convention: Annotated[str, typer.Option(help="Counting convention: default | paper-2023.")] = "default",
    device: Annotated[str | None, typer.Option(help="Roofline device preset or YAML (a100, h100, ...).")] = None,
    lm_head: Annotated[bool, typer.Option("--lm-head", help="Count the LM head (the paper does not).")] = False,
    ops: Annotated[bool, typer.Option("--ops", help="List every op in --json output.")] = False,
    as_json: Annotated[bool, json_option("tstack.analyze/1")] = False,
    plot: Annotated[
        Path | None, path_option("--plot", "Write PNG plots (Figs. 4-6, breakdowns) to this folder.")
    ] = None,
    allow_slow: AllowSlowOption = False,
) -> None:
    """FLOPs, memory operations and arithmetic intensity per operator class (the paper's Tables 3-4, Figs. 4-6)."""
    from tstack.api import analyze as run_analyze
    from tstack.report.json_doc import analysis_document
    from tstack.report.tables import analysis_tables

    seqs = parse_ints(seq, "seq", "128,512,4096")
    if plot is not None:
        output_dir(plot, "--plot")
    names = models or ["bert-base"]
    estimate = _estimate(names, seqs, phase, batch)
    slow = estimate is not None and refuse_if_slow(estimate, allow_slow, "analyze", "fewer or shorter --seq")
    with predicted_progress(estimate or WorkEstimate(0.0, ""), "counting", show=slow):
        analyses = [
            run_analyze(
                m,
                seqs,
                phase=phase,
                batch=batch,
                bits=bits,
                convention=convention,
                device=device,
                lm_head=lm_head,
            )
            for m in names
        ]
    written = []
    if plot is not None:
        from tstack.report.plots import analysis_plots

        written = analysis_plots(analyses, plot)
    if as_json:
        docs = [analysis_document(a, ops=ops) for a in analyses]
        emit_json(docs[0] if len(docs) == 1 else {"schema": "tstack.analyze-set/1", "analyses": docs})
        return
    for a in analyses:
        kv = a.results[-1].kv_cache_bytes
        extra = f", KV cache at l = {a.results[-1].workload.seq_len}: {kv / 2**20:.1f} MiB" if kv else ""
        _out.print(f"[bold]{a.model.name}[/bold]: {a.results[0].params:,} parameters{extra}")
        for table in analysis_tables(a):
            _out.print(table)
    for path in written:
        _out.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add `analyze` to the `tstack` app."""
    app.command()(analyze)
