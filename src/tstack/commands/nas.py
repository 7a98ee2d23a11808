"""`tstack nas train | search | report`: hardware-aware NAS (the paper's §6.4), registered on the main app by
`register`.

Everything a run makes goes in one folder by default, ``nas-run/``: ``supernet/checkpoint.pt`` and
``baseline/checkpoint.pt`` from `train`, ``study.journal`` (the Optuna study) from `search`, PNGs from `report`.

CPU scale (minutes)::

    tstack nas train                       # the `cpu` space's supernet on the shipped corpus
    tstack nas train --baseline            # the largest architecture trained alone (the paper's baseline)
    tstack nas search --population 16 --iterations 10
    tstack nas report --plot nas-run

Paper scale (Table 8 space, WikiText-2, a Ray cluster for the evaluations)::

    tstack nas train --space paper --corpus wikitext-2-raw/ --out nas-paper
    tstack nas train --space paper --corpus wikitext-2-raw/ --out nas-paper --baseline
    ray start --head                       # on the head node; `ray start --address HEAD:6379` on the others
    tstack nas search --space paper --hardware gemmini-ibert --population 40 --iterations 40 \\
        --checkpoint nas-paper/supernet/checkpoint.pt --baseline-checkpoint nas-paper/baseline/checkpoint.pt \\
        --corpus wikitext-2-raw/ --storage nas-paper/study.journal --ray auto
    tstack nas report --storage nas-paper/study.journal --plot nas-paper

Several search workers may share one study: run the same `search` command in several shells (a journal file on a
shared file system, or --storage postgresql://user:pass@host/db across machines); a killed search resumes when
its command is run again.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tstack.commands.common import check_seed, emit_json, json_option, path_option
from tstack.errors import TstackError
from tstack.fileio import output_dir
from tstack.report.nas_doc import NAS_SCHEMA, nas_document, nas_summary, nas_tables

if TYPE_CHECKING:
    from tstack.nas.search import SearchProgress, StudyResults
    from tstack.nas.space import SearchSpace

DEFAULT_RUN = Path("nas-run")
DEFAULT_STORAGE = str(DEFAULT_RUN / "study.journal")
_out = Console()
_err = Console(stderr=True)

nas_app = typer.Typer(
    name="nas",
    help="Hardware-aware NAS (paper §6.4): train a supernet, search (perplexity, EDP) on an accelerator, report.",
    no_args_is_help=True,
)


def _progress() -> Progress:
    # transient: the bar goes away when done, so an error is the only line left on stderr; off when stderr is not a
    # terminal, where rich would still leave an empty line before the error
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
        disable=not _err.is_terminal,
    )


# -- train --------------------------------------------------------------------------------------------------------
@nas_app.command("train")
def train(
    space: Annotated[str, typer.Option(help="Search space: cpu | paper | a YAML file.")] = "cpu",
    corpus: Annotated[
        Path | None, typer.Option(help="Text file or WikiText-2 folder (default: the shipped public-domain novel).")
    ] = None,
    out: Annotated[
        Path, path_option("--out", "Run folder; checkpoints go to OUT/supernet or OUT/baseline.")
    ] = DEFAULT_RUN,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="Train the largest architecture alone (the paper's baseline).")
    ] = False,
    threads: Annotated[int | None, typer.Option(help="torch threads (default: torch's).")] = None,
    steps: Annotated[
        int | None, typer.Option(help="Optimizer steps (default: the preset's; paper: 50 epochs).")
    ] = None,
    as_json: Annotated[bool, json_option("tstack.nas/1")] = False,
) -> None:
    """Train the weight-sharing supernet with the sandwich rule (or, with --baseline, the largest model alone)."""
    from tstack.nas.data import load_corpus
    from tstack.nas.train import TrainConfig, train_baseline, train_supernet
    from tstack.spec.nas_space import load_space

    if threads is not None and threads <= 0:
        raise TstackError(f"--threads must be positive, got {threads}")
    if steps is not None and steps <= 0:
        raise TstackError(f"--steps must be positive, got {steps}")
    output_dir(out, "--out")
    the_space = load_space(space)
    text = load_corpus(corpus)
    config = TrainConfig.paper() if the_space.name == "paper" else TrainConfig.cpu()
    if steps is not None:
        config = replace(config, steps=steps, epochs=None)
    kind = "baseline" if baseline else "supernet"
    folder = out / kind
    with _progress() as bar:
        task = bar.add_task(f"training the {kind}", total=None)

        def advance(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, description=f"training the {kind} (loss {loss:.3f})")

        fn = train_baseline if baseline else train_supernet
        checkpoint = fn(the_space, text, folder, config, progress=None if as_json else advance, threads=threads)
    if as_json:
        emit_json({"schema": NAS_SCHEMA, "command": "train", "kind": kind, "space": the_space.to_dict(),
                   "corpus": text.source, "checkpoint": str(checkpoint)})  # fmt: skip
        return
    _out.print(f"{kind} checkpoint: {checkpoint}", highlight=False)


# -- search -------------------------------------------------------------------------------------------------------
def _objective(
    objective: str,
    space: SearchSpace | None,
    checkpoint: Path,
    baseline_checkpoint: Path | None,
    corpus: Path | None,
    max_tokens: int | None,
    threads: int | None,
) -> tuple[Any, SearchSpace, float | None]:
    """The objective, the space it searches, and the stand-alone baseline's perplexity where there is one."""
    from tstack.nas.proxy import ProxyPerplexity

    if objective == "proxy":
        assert space is not None
        return ProxyPerplexity(space), space, None
    if objective != "supernet":
        raise TstackError(f"unknown --objective {objective!r}; choose supernet or proxy")
    if not checkpoint.is_file():
        raise TstackError(
            f"--objective supernet needs a trained supernet, but {checkpoint} does not exist; run `tstack nas train` "
            "first, pass --checkpoint PATH, or use --objective proxy"
        )
    from tstack.nas.search import SupernetObjective

    obj = SupernetObjective(checkpoint, corpus, max_tokens, threads)
    evaluator = obj.load()  # fails here, in one line, on a bad checkpoint or corpus: not inside the search
    trained = evaluator.space
    if space is not None and space != trained:
        raise TstackError(
            f"{checkpoint} was trained on search space {trained.name!r}, not {space.name!r}; drop --space or pass "
            "the space it was trained on"
        )
    base_ppl = None
    if baseline_checkpoint is not None and baseline_checkpoint.is_file():
        base = SupernetObjective(baseline_checkpoint, corpus, max_tokens, threads)
        base_ppl = base(trained.largest())
    return obj, trained, base_ppl


_PAPER_EPILOG = (
    "Paper scale (Table 8 space, a Ray cluster): tstack nas search --space paper --hardware gemmini-ibert "
    "--population 40 --iterations 40 --checkpoint nas-paper/supernet/checkpoint.pt --baseline-checkpoint "
    "nas-paper/baseline/checkpoint.pt --corpus wikitext-2-raw/ --storage nas-paper/study.journal --ray auto "
    "(after `ray start --head`; see docs/nas.md)"
)


@nas_app.command("search", epilog=_PAPER_EPILOG)
def search(
    space: Annotated[
        str | None, typer.Option(help="cpu | paper | YAML (default: the checkpoint's space; proxy: cpu).")
    ] = None,
    hardware: Annotated[str, typer.Option(help="Hardware preset or YAML the candidates are priced on.")] = (
        "gemmini-ibert"
    ),
    seq: Annotated[int | None, typer.Option(help="Sequence length priced (default: the space's).")] = None,
    phase: Annotated[str, typer.Option(help="prefill (the perplexity forward pass) | generate | decode.")] = "prefill",
    algorithm: Annotated[str, typer.Option(help="evolution (the paper's) | nsga2 | random.")] = "evolution",
    population: Annotated[int, typer.Option(help="Population size (the paper: 40).")] = 40,
    iterations: Annotated[int, typer.Option(help="Evolution iterations (the paper: 40).")] = 40,
    mutation_prob: Annotated[float, typer.Option(help="Per-gene mutation probability (the paper: 0.2).")] = 0.2,
    max_evaluations: Annotated[int | None, typer.Option(help="Cap on objective calls.")] = None,
    storage: Annotated[
        str, typer.Option(help="Journal file, sqlite:///FILE or postgresql://user:pass@host/db.")
    ] = DEFAULT_STORAGE,
    study: Annotated[str, typer.Option(help="Study name inside the storage.")] = "tstack-nas",
    ray: Annotated[
        str | None, typer.Option("--ray", help="Evaluate on Ray: local | auto | HOST:PORT | ray://HOST:PORT.")
    ] = None,
    ray_gpus: Annotated[float, typer.Option(help="GPUs per Ray evaluation (0: one per CPU).")] = 0.0,
    parallel: Annotated[int | None, typer.Option(help="Concurrent Ray evaluations (default: the cluster's).")] = None,
    objective: Annotated[str, typer.Option(help="supernet (measured perplexity) | proxy (surrogate).")] = "supernet",
    checkpoint: Annotated[Path, typer.Option(help="Supernet checkpoint.")] = DEFAULT_RUN / "supernet/checkpoint.pt",
    baseline_checkpoint: Annotated[
        Path | None, typer.Option(help="Stand-alone baseline checkpoint [nas-run/baseline/checkpoint.pt if there].")
    ] = None,
    corpus: Annotated[Path | None, typer.Option(help="Held-out text: the corpus the supernet was trained on.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Held-out tokens per perplexity (default 16384).")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads per evaluation.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the search.")] = 0,
    as_json: Annotated[bool, json_option("tstack.nas/1")] = False,
) -> None:
    """Search the space for the (perplexity, EDP) Pareto front; resumes the study if it exists.

    The paper's setting is `--space paper --hardware gemmini-ibert --population 40 --iterations 40` with a trained
    supernet; on a Ray cluster add `--ray auto` (see docs/nas.md)."""
    from tstack.api import price_table
    from tstack.nas.search import SearchConfig, run_search
    from tstack.spec.nas_space import load_space

    if threads is not None and threads <= 0:
        raise TstackError(f"--threads must be positive, got {threads}")
    check_seed(seed)
    if ray == "local":
        # the private Ray instance reports usage statistics home unless told not to; Ray reads only this variable
        # (or ~/.ray/config.json) and library code sets none, so the command does it before Ray starts
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    config = SearchConfig(algorithm, population, iterations, mutation_prob, seed, max_evaluations)
    given = load_space(space) if space is not None else (load_space("cpu") if objective == "proxy" else None)
    if baseline_checkpoint is None and (DEFAULT_RUN / "baseline/checkpoint.pt").is_file():
        baseline_checkpoint = DEFAULT_RUN / "baseline/checkpoint.pt"
    obj, the_space, base_ppl = _objective(objective, given, checkpoint, baseline_checkpoint, corpus, max_tokens,
                                          threads)  # fmt: skip
    with _progress() as bar:
        task = bar.add_task(f"pricing on {hardware}", total=None)

        def priced(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        table = price_table(the_space, hardware, seq, phase, progress=priced)
        bar.update(task, description="searching", completed=0, total=None)

        def searched(p: SearchProgress) -> None:
            bar.update(
                task,
                completed=p.completed,
                total=p.total,
                description=f"searching ({p.unit}s; {p.evaluations} evaluated, front {p.front_size})",
            )

        results = run_search(the_space, table, obj, storage=storage, study_name=study, config=config,
                             objective_name=objective, ray_address=ray, ray_gpus=ray_gpus, parallel=parallel,
                             progress=None if as_json else searched, baseline_perplexity=base_ppl)  # fmt: skip
    _render(results, storage, as_json, plot=None)


# -- report -------------------------------------------------------------------------------------------------------
@nas_app.command("report")
def report(
    storage: Annotated[str, typer.Option(help="The study's storage (as given to search).")] = DEFAULT_STORAGE,
    study: Annotated[str, typer.Option(help="Study name inside the storage.")] = "tstack-nas",
    baseline_perplexity: Annotated[
        float | None, typer.Option(help="Override the baseline's perplexity (e.g. a stand-alone run's).")
    ] = None,
    plot: Annotated[Path | None, path_option("--plot", "Write Figs. 25-26 as PNGs to this folder.")] = None,
    as_json: Annotated[bool, json_option("tstack.nas/1")] = False,
) -> None:
    """Pareto fronts and the architectures selected at +0.1 and +1 perplexity, with gains (the paper's Table 9)."""
    from tstack.nas.search import load_results

    if plot is not None:
        output_dir(plot, "--plot")
    results = load_results(storage, study)
    if baseline_perplexity is not None:
        results = replace(results, baseline_perplexity=baseline_perplexity)
    _render(results, storage, as_json, plot)


def _render(results: StudyResults, storage: str, as_json: bool, plot: Path | None) -> None:
    doc = nas_document(results, storage)
    written: list[Path] = []
    if plot is not None and results.baseline is not None:
        from tstack.report.nas_plots import nas_plots

        meta = results.meta
        title = f"{meta.get('hardware')}, l={meta.get('seq_len')} {meta.get('phase')}"
        written = nas_plots(results.points(), results.baseline.point, plot, title, results.baseline_perplexity)
    if as_json:
        emit_json(doc)
        return
    _out.print(nas_summary(doc), highlight=False)
    if "perplexity" in doc["notes"]:
        _out.print(f"[yellow]note:[/] {doc['notes']['perplexity']}", highlight=False)
    if doc["baseline"] is None:
        _out.print("no evaluated baseline yet: run or resume `tstack nas search`")
        return
    for table in nas_tables(doc):
        _out.print(table)
    for path in written:
        _out.print(f"wrote {path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the `nas` command group to the tstack app."""
    app.add_typer(nas_app, name="nas")
