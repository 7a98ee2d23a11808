"""`tstack codesign`: hardware x mapping x model shape searched together under an area budget (issue 18).

    tstack codesign --strategy joint --evaluations 60 --perplexity-limit 23
    tstack codesign --strategy sequential --evaluations 60 --area-budget 0.9 --perplexity-limit 23
    tstack codesign --strategy alternating --rounds 2 --evaluations 60
    tstack codesign --strategy joint --ray local          # evaluations on a private Ray instance (or auto, HOST:PORT)
    tstack codesign --perplexity supernet --supernet nas-run/supernet/checkpoint.pt   # after `tstack nas train`

Perplexity is the proxy surrogate (`tstack.nas.proxy.ProxyPerplexity`, the default; limit 23 unless given) or,
with --perplexity supernet, measured: the held-out perplexity of each shape's sub-network of a supernet trained by
`tstack nas train` (`tstack.nas.search.SupernetObjective`; the shape space is then the checkpoint's, and the limit,
unless given, the largest shape's measured perplexity times --perplexity-factor, default 1.03). Area (and, by default,
each design's per-access energies) come from the component area model of `tstack.hardware.area`. Without
--area-budget the budget is the space's base design's own predicted area (gemmini-ibert's, for the `gemmini`
space): the question the search answers is then what the paper's hand-made silicon could have been spent on
instead. The study lives in --storage and a killed run resumes when rerun.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tstack.commands.common import check_seed, emit_json, output_path
from tstack.errors import TstackError
from tstack.fileio import output_dir
from tstack.hardware.types import Hardware

if TYPE_CHECKING:
    from tstack.nas.space import Architecture, SearchSpace

DEFAULT_STORAGE = "codesign-run/study.journal"
PROXY_LIMIT = 23.0  # the proxy's default limit: the largest `cpu` shape is at 22.4, the smallest at 24.9
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
    strategy: Annotated[
        str, typer.Option(help="joint | sequential (hardware first, then shapes: the paper's) | alternating.")
    ] = "joint",
    hardware_space: Annotated[
        str, typer.Option("--hardware-space", help="Hardware parameter space: a preset or a YAML file.")
    ] = "gemmini",
    space: Annotated[
        str | None, typer.Option(help="Model-shape space (NAS): cpu | paper | YAML (default: cpu; the supernet's).")
    ] = None,
    area_budget: Annotated[
        float | None, typer.Option("--area-budget", help="Area budget in mm^2 (default: the base design's area).")
    ] = None,
    perplexity: Annotated[str, typer.Option(help="proxy (surrogate) | supernet (measured).")] = "proxy",
    supernet: Annotated[
        Path | None, typer.Option(help="Supernet checkpoint (from `tstack nas train`) for --perplexity supernet.")
    ] = None,
    corpus: Annotated[Path | None, typer.Option(help="Held-out text: the corpus the supernet was trained on.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Held-out tokens per perplexity (default 16384).")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads per perplexity evaluation.")] = None,
    perplexity_limit: Annotated[
        float | None, typer.Option("--perplexity-limit", help="Highest perplexity allowed (proxy default: 23).")
    ] = None,
    perplexity_factor: Annotated[
        float | None,
        typer.Option(help="Limit as a multiple of the largest shape's perplexity (supernet default: 1.03)."),
    ] = None,
    metric: Annotated[str, typer.Option(help="Hardware objective: latency | energy | edp.")] = "edp",
    energies: Annotated[
        str, typer.Option(help="Per-access energies: table (the area model's components) | preset (hand).")
    ] = "table",
    evaluations: Annotated[int, typer.Option(help="Budget of proposals (each one candidate priced).")] = 60,
    batch: Annotated[int, typer.Option(help="Proposals asked together (evaluated in parallel on Ray).")] = 4,
    rounds: Annotated[int, typer.Option(help="Rounds of the alternating strategy (hardware, then shapes).")] = 2,
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
    """Search accelerator parameters and model shapes together (or in sequence, or alternating) for the (EDP, area,
    perplexity) front under an area budget and a perplexity limit."""
    from tstack.codesign import CodesignConfig, CodesignProblem, Energies, Metric, Sampler, Strategy
    from tstack.codesign.search import run_codesign
    from tstack.report.codesign_doc import codesign_document
    from tstack.spec.codesign import load_hardware_space

    check_seed(seed)
    if plot is not None:
        output_dir(plot, "--plot")  # refused before the search, not after it
    the_strategy = _choice(Strategy, strategy, "--strategy")
    the_metric = _choice(Metric, metric, "--metric")
    the_sampler = _choice(Sampler, sampler, "--sampler")
    the_energies = _choice(Energies, energies, "--energies")
    if workers is not None and workers < 1:
        raise TstackError(f"--workers must be at least 1, got {workers}")
    config = CodesignConfig(the_strategy, evaluations, batch, sampler=the_sampler, seed=seed, rounds=rounds)
    source = PerplexitySource(perplexity, supernet, corpus, max_tokens, threads, perplexity_limit, perplexity_factor)
    ppl_model, shapes, limit = source.resolve(space)
    hw_space = load_hardware_space(hardware_space)
    budget_mm2 = AREA_MODEL(hw_space.base) if area_budget is None else area_budget
    problem = CodesignProblem(shapes, hw_space, AREA_MODEL, ppl_model, budget_mm2, limit, the_metric, the_energies)
    result = run_codesign(problem, config, storage=storage, study_name=study, ray_address=ray, ray_workers=workers)
    doc = codesign_document(problem, config, result)
    if plot is not None:
        from tstack.report.codesign_plots import plot_front

        label = "perplexity (measured, supernet)" if source.kind == "supernet" else "perplexity (proxy surrogate)"
        plot_front([result], plot / "codesign-front.png", problem.area_budget_mm2, perplexity_label=label)
    if as_json:
        emit_json(doc)
        return
    _render(doc, source.kind)


@dataclass(frozen=True)
class PerplexitySource:
    """The perplexity options of `tstack codesign`, checked before any search: which objective (the proxy, or a
    trained supernet measured on held-out text), and the limit (absolute, or a factor of the largest shape's)."""

    kind: str
    supernet: Path | None
    corpus: Path | None
    max_tokens: int | None
    threads: int | None
    limit: float | None
    factor: float | None

    def check(self) -> None:
        """One line for each way the options contradict each other or are out of range."""
        if self.kind not in ("proxy", "supernet"):
            raise TstackError(f"--perplexity {self.kind!r} is not one of: proxy, supernet")
        if self.limit is not None and self.factor is not None:
            raise TstackError("give --perplexity-limit or --perplexity-factor, not both")
        if self.factor is not None and not (self.factor > 0 and math.isfinite(self.factor)):
            raise TstackError(f"--perplexity-factor must be a positive number, got {self.factor}")
        for option, value in (("--max-tokens", self.max_tokens), ("--threads", self.threads)):
            if value is not None and value < 1:
                raise TstackError(f"{option} must be at least 1, got {value}")
        if self.kind == "proxy":
            options = {"--supernet": self.supernet, "--corpus": self.corpus, "--max-tokens": self.max_tokens,
                       "--threads": self.threads}  # fmt: skip
            given = [option for option, value in options.items() if value is not None]
            if given:
                raise TstackError(f"{given[0]} is read only with --perplexity supernet")
            return
        if self.supernet is None:
            raise TstackError(
                "--perplexity supernet needs --supernet PATH, a checkpoint from `tstack nas train` (e.g. "
                "nas-run/supernet/checkpoint.pt); or use --perplexity proxy"
            )
        if not self.supernet.is_file():
            raise TstackError(f"--supernet {self.supernet} does not exist; run `tstack nas train` or give its path")

    def resolve(self, space: str | None) -> tuple[Callable[[Architecture], float], SearchSpace, float]:
        """(perplexity model, shape space, perplexity limit); a supernet's checkpoint and corpus are loaded here, so
        that a bad one fails in one line before the search."""
        from tstack.nas.proxy import ProxyPerplexity
        from tstack.spec.nas_space import load_space

        self.check()
        if self.kind == "proxy":
            shapes = load_space(space or "cpu")
            model: Callable[[Architecture], float] = ProxyPerplexity(shapes)
            default_limit = PROXY_LIMIT if self.factor is None else None
        else:
            from tstack.nas.search import SupernetObjective

            assert self.supernet is not None
            objective = SupernetObjective(self.supernet, self.corpus, self.max_tokens, self.threads)
            shapes = objective.load().space
            if space is not None and load_space(space) != shapes:
                raise TstackError(
                    f"{self.supernet} was trained on shape space {shapes.name!r}, not {space!r}; drop --space or "
                    "pass the space it was trained on"
                )
            model, default_limit = objective, None
        if self.limit is not None:
            return model, shapes, self.limit
        if default_limit is not None:
            return model, shapes, default_limit
        from tstack.codesign.evaluate import SUPERNET_FACTOR, relative_perplexity_limit

        factor = SUPERNET_FACTOR if self.factor is None else self.factor
        return model, shapes, relative_perplexity_limit(model, shapes, factor)


def _choice(enum: Any, value: str, option: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise TstackError(f"{option} {value!r} is not one of: {', '.join(m.value for m in enum)}") from None


def _render(doc: dict[str, Any], kind: str) -> None:
    what = "measured (supernet)" if kind == "supernet" else "proxy surrogate"
    table = Table(title=f"co-design front ({doc['strategy']}; perplexity: {what}; latency/energy predicted)")
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
