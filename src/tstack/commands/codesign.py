"""`tstack codesign`: hardware x mapping x model shape searched together under an area budget (issue 18).

    tstack codesign --strategy joint --evaluations 60 --perplexity-limit 23
    tstack codesign --strategy sequential --evaluations 60 --area-budget 0.9 --perplexity-limit 23
    tstack codesign --strategy joint --ray local          # evaluations on a private Ray instance (or auto, HOST:PORT)

Perplexity is the proxy surrogate (`tstack.nas.proxy.ProxyPerplexity`), not a measurement; area (and, by default,
each design's per-access energies) come from the component area model of `tstack.hardware.area`. Without
--area-budget the budget is the space's base design's own predicted area (gemmini-ibert's, for the `gemmini`
space): the question the search answers is then what the paper's hand-made silicon could have been spent on
instead. The study lives in --storage and a killed run resumes when rerun.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tstack.commands.common import check_seed, emit_json, output_path
from tstack.errors import TstackError
from tstack.fileio import output_dir
from tstack.hardware.types import Hardware

DEFAULT_STORAGE = "codesign-run/study.journal"
_out = Console()


def component_area_mm2(hw: Hardware) -> float:
    """Area of `hw` in mm^2, predicted by tstack's component area model (`tstack.hardware.area.design_area`, its
    default table: CACTI SRAMs and Aladdin logic through hwcomponents at 22 nm)."""
    from tstack.hardware.area import design_area
    from tstack.spec.area import load_tables

    return float(design_area(hw, tables=load_tables()).total_mm2)


# the area model the command uses; a module attribute so that tests can run the command with a stated model
AREA_MODEL: Callable[[Hardware], float] = component_area_mm2


def codesign(
    strategy: Annotated[str, typer.Option(help="joint | sequential (hardware first, then shapes: the paper's).")] = (
        "joint"
    ),
    hardware_space: Annotated[
        str, typer.Option("--hardware-space", help="Hardware parameter space: a preset or a YAML file.")
    ] = "gemmini",
    space: Annotated[str, typer.Option(help="Model-shape space (NAS): cpu | paper | a YAML file.")] = "cpu",
    area_budget: Annotated[
        float | None, typer.Option("--area-budget", help="Area budget in mm^2 (default: the base design's area).")
    ] = None,
    perplexity_limit: Annotated[
        float, typer.Option("--perplexity-limit", help="Highest perplexity allowed (proxy surrogate).")
    ] = 23.0,
    metric: Annotated[str, typer.Option(help="Hardware objective: latency | energy | edp.")] = "edp",
    energies: Annotated[
        str, typer.Option(help="Per-access energies: table (the area model's components) | preset (hand).")
    ] = "table",
    evaluations: Annotated[int, typer.Option(help="Budget of proposals (each one candidate priced).")] = 60,
    batch: Annotated[int, typer.Option(help="Proposals asked together (evaluated in parallel on Ray).")] = 4,
    sampler: Annotated[str, typer.Option(help="tpe | random.")] = "tpe",
    seed: Annotated[int, typer.Option(help="Seed of the samplers.")] = 0,
    storage: Annotated[str, typer.Option(help="Journal file, sqlite:///FILE, postgresql://... or memory.")] = (
        DEFAULT_STORAGE
    ),
    study: Annotated[str, typer.Option(help="Study name inside the storage.")] = "tstack-codesign",
    ray: Annotated[str | None, typer.Option("--ray", help="Evaluate on Ray: local | auto | HOST:PORT.")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray workers (default: the cluster's CPUs).")] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            parser=output_path("--plot"), metavar="<path>", help="Write the Pareto front as codesign-front.png here."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.codesign/1 JSON document.")] = False,
) -> None:
    """Search accelerator parameters and model shapes together (or in sequence) for the (EDP, area, perplexity)
    front under an area budget and a perplexity limit."""
    from tstack.codesign import CodesignConfig, CodesignProblem, Energies, Metric, Sampler, Strategy
    from tstack.codesign.search import run_codesign
    from tstack.nas.proxy import ProxyPerplexity
    from tstack.report.codesign_doc import codesign_document
    from tstack.spec.codesign import load_hardware_space
    from tstack.spec.nas_space import load_space

    check_seed(seed)
    if plot is not None:
        output_dir(plot, "--plot")  # refused before the search, not after it
    the_strategy = _choice(Strategy, strategy, "--strategy")
    the_metric = _choice(Metric, metric, "--metric")
    the_sampler = _choice(Sampler, sampler, "--sampler")
    the_energies = _choice(Energies, energies, "--energies")
    if workers is not None and workers < 1:
        raise TstackError(f"--workers must be at least 1, got {workers}")
    shapes = load_space(space)
    hw_space = load_hardware_space(hardware_space)
    budget_mm2 = AREA_MODEL(hw_space.base) if area_budget is None else area_budget
    problem = CodesignProblem(
        shapes,
        hw_space,
        AREA_MODEL,
        ProxyPerplexity(shapes),
        budget_mm2,
        perplexity_limit,
        the_metric,
        the_energies,
    )
    config = CodesignConfig(the_strategy, evaluations, batch, sampler=the_sampler, seed=seed)
    result = run_codesign(problem, config, storage=storage, study_name=study, ray_address=ray, ray_workers=workers)
    doc = codesign_document(problem, config, result)
    if plot is not None:
        from tstack.report.codesign_plots import plot_front

        plot_front([result], plot / "codesign-front.png", problem.area_budget_mm2)
    if as_json:
        emit_json(doc)
        return
    _render(doc)


def _choice(enum: Any, value: str, option: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise TstackError(f"{option} {value!r} is not one of: {', '.join(m.value for m in enum)}") from None


def _render(doc: dict[str, Any]) -> None:
    table = Table(title=f"co-design front ({doc['strategy']}; perplexity: proxy surrogate; latency/energy predicted)")
    for col in ("hardware", "shape", "area mm2", "latency cycles", "energy uJ", "EDP", "perplexity"):
        table.add_column(col)
    for e in doc["front"]:
        table.add_row(e["hardware_key"], e["arch"], f"{e['area_mm2']:.3f}", f"{e['latency_cycles']:.4g}",
                      f"{e['energy_pj'] / 1e6:.4g}", f"{e['edp']:.4g}", f"{e['perplexity']:.3f}")  # fmt: skip
    _out.print(table)
    counts = doc["counts"]
    _out.print(f"{counts['proposals']} proposals, {counts['evaluations']} evaluated, {counts['failed']} failed",
               highlight=False)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the `codesign` command to the tstack app."""
    app.command("codesign")(codesign)
