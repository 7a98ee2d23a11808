"""`tstack study`: the whole co-design pipeline in one command, written up as an HTML report.

Output, in `--out` (default `tstack-study/`): `report.html` (self-contained), `study.json` (schema
``tstack.study/1``), `figures/*.png|svg`, and `cache/` (one file per finished experiment; `--resume` reuses them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tstack.commands.common import check_seed, json_safe, parse_names, path_option
from tstack.errors import TstackError
from tstack.fileio import output_dir
from tstack.studies.runner import Callbacks
from tstack.workload.analysis import MAX_SEQ_LEN, check_count

_out = Console()
_err = Console(stderr=True)


class _RichCallbacks(Callbacks):
    """Shows one bar over the experiments and the step each one is on."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task("study", total=total)

    def start(self, name: str, title: str, index: int, total: int) -> None:
        self.progress.update(self.task, description=f"[bold]{name}[/]: {title}")

    def step(self, name: str, text: str) -> None:
        self.progress.update(self.task, description=f"[bold]{name}[/]: {text}")

    def done(self, name: str, seconds: float, cached: bool, error: str | None) -> None:
        how = "from the cache" if cached else f"{seconds:.1f} s"
        status = f"[red]failed: {error}[/]" if error else f"[green]done[/] ({how})"
        self.progress.console.print(f"  {name}: {status}", highlight=False)
        self.progress.advance(self.task)


def study(
    model: Annotated[str, typer.Option(help="model preset or file whose inference the study follows")] = "bert-base",
    hw_baseline: Annotated[str, typer.Option("--hw-baseline", help="the starting accelerator design")] = (
        "gemmini-baseline"
    ),
    hw_target: Annotated[str, typer.Option("--hw-target", help="the co-designed accelerator")] = "gemmini-ibert",
    seq: Annotated[int, typer.Option(help="sequence length of the hardware experiments")] = 512,
    out: Annotated[
        Path,
        path_option("--out", "folder for report.html, study.json, figures/ and cache/"),
    ] = Path("tstack-study"),
    quick: Annotated[bool, typer.Option("--quick", help="about 2 minutes: small sweeps, a tiny NAS")] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="the paper's scale (100k mappings, the paper's NAS space: wants a GPU or Ray)"),
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="reuse every experiment finished by an earlier run")] = False,
    only: Annotated[
        str | None, typer.Option(help="comma-separated experiments: workload,profile,gemmini,mapping,nas")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads for the profile and NAS")] = None,
    seed: Annotated[int, typer.Option(help="seed of every random choice")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print study.json instead of the summary")] = False,
) -> None:
    """Run the full-stack study (workload, CPU profile, accelerator, mapping, NAS) and write an HTML report."""
    from tstack.report.study_html import render_report
    from tstack.studies.base import Scale, StudyConfig
    from tstack.studies.runner import EXPERIMENTS, parse_only, run_study

    if quick and full:
        raise TstackError("--quick and --full exclude each other; pick one (or neither for the default)")
    if threads is not None and threads <= 0:
        raise TstackError(f"--threads must be positive, got {threads}")
    check_seed(seed)
    check_count(seq, "--seq", MAX_SEQ_LEN)
    output_dir(out, "--out")
    from tstack import api

    api._spec(model)  # fail fast on an unknown model, before minutes of work
    api._hardware(hw_baseline)
    api._hardware(hw_target)
    scale = Scale.QUICK if quick else Scale.FULL if full else Scale.DEFAULT
    config = StudyConfig.make(scale, model=model, hw_baseline=hw_baseline, hw_target=hw_target, seq=seq, seed=seed,
                              threads=threads)  # fmt: skip
    names = parse_only(parse_names(only, "only", EXPERIMENTS)) if only is not None else None
    t0 = time.perf_counter()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=_err
    ) as progress:
        doc = run_study(
            config, out, resume=resume, only=names, callbacks=_RichCallbacks(progress, len(names or EXPERIMENTS))
        )
        progress.update(progress.task_ids[0], description="writing the report")
        report = render_report(doc, out)
    if as_json:
        _out.print_json(json.dumps(json_safe(doc), allow_nan=False))
        return
    c = doc["cumulative"]
    for f in c["factors"]:
        g = f["gains"]
        _out.print(
            f"{f['step']:<28} latency {g['latency']:.3g}x  EDP {g['edp']:.3g}x   ({f['source']})",
            highlight=False,
            soft_wrap=True,
        )
    if c["factors"]:
        e = c["end_to_end"]
        _out.print(
            f"{'end to end':<28} latency {e['latency']:.3g}x  EDP {e['edp']:.3g}x", highlight=False, soft_wrap=True
        )
    _out.print(f"Report: {report.resolve()}  ({time.perf_counter() - t0:.0f} s)", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("study")(study)
