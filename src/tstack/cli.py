"""The `tstack` command line: parse, call the API, render. Errors become one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer._click import exceptions as usage  # typer >= 0.20 vendors click as typer._click
from typer.core import TyperGroup

from tstack.commands.common import MAX_SAMPLES, check_seed, emit_json, parse_ints, parse_names
from tstack.errors import TstackError
from tstack.fileio import confined, output_dir, output_file, safe_name, write_atomic
from tstack.hardware.design import design_of

if TYPE_CHECKING:
    from tstack.mapping.mapspace import Semantics
    from tstack.mapping.timeloop_sampler import IdSpace

# OpenMP's default spin-waiting makes torch's 2-thread runs 5-7x slower as soon as another process takes a core
# (measured while training the NAS supernet on a shared 2-core machine); passive waiting costs nothing when idle.
# It must be set before torch loads, and a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def one_line(text: str) -> str:
    """`text` on one line: the CLI's promise is one line on stderr per error."""
    return " ".join(text.split())


class _OneLineErrors(TyperGroup):
    """The CLI's error boundary, in the app itself so that the console script, `python -m tstack` and in-process
    runners behave alike: a `TstackError` or a usage error (unknown option, a value of the wrong type) becomes one
    line `error: ...` on stderr and exit code 2, never a traceback or a framed panel."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except usage.NoArgsIsHelpError as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            sys.exit(2)
        except usage.UsageError as exc:
            where = f"; see `{exc.ctx.command_path} --help`" if exc.ctx is not None else ""
            typer.echo(one_line(f"error: {exc.format_message().rstrip('.')}{where}"), err=True)
            sys.exit(exc.exit_code)
        except usage.ClickException as exc:
            typer.echo(one_line(f"error: {exc.format_message()}"), err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except TstackError as exc:
            typer.echo(one_line(f"error: {exc}"), err=True)
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="tstack",
    help="Full-stack optimization of Transformer inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_OneLineErrors,
)
_out = Console()
_err = Console(stderr=True)


def _parse_seq(text: str | None) -> list[int] | None:
    return parse_ints(text, "seq", "128,512,4096")


@app.command()
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
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.analyze/1 JSON document.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write PNG plots (Figs. 4-6, breakdowns) to this folder.")] = None,
) -> None:
    """FLOPs, memory operations and arithmetic intensity per operator class (the paper's Tables 3-4, Figs. 4-6)."""
    from tstack.api import analyze as run_analyze
    from tstack.report.json_doc import analysis_document
    from tstack.report.tables import analysis_tables

    seqs = _parse_seq(seq)
    if plot is not None:
        output_dir(plot, "--plot")
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
        for m in models or ["bert-base"]
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


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.models/1 JSON document.")] = False,
) -> None:
    """List the model presets."""
    from tstack.spec import load_model, preset_names, read_preset
    from tstack.workload import ModelSpec, count_params

    rows = []
    for name in preset_names("models"):
        spec = load_model(name)
        raw = read_preset("models", name)
        kind = str(spec.family) if isinstance(spec, ModelSpec) else "cnn"
        rows.append(
            {
                "name": name,
                "family": kind,
                "params": count_params(spec),
                "description": raw.get("description", ""),
            }
        )
    if as_json:
        emit_json({"schema": "tstack.models/1", "models": rows})
        return
    table = Table(title="model presets", title_justify="left")
    for col in ("name", "family", "parameters", "description"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    for r in rows:
        table.add_row(r["name"], r["family"], f"{r['params']:,}", r["description"])
    _out.print(table)


@app.command()
def devices(
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.devices/1 JSON document.")] = False,
) -> None:
    """List the roofline device presets."""
    from tstack.spec import load_device, preset_names

    found = [load_device(n) for n in preset_names("devices")]
    if as_json:
        emit_json(
            {
                "schema": "tstack.devices/1",
                "devices": [
                    {
                        "name": d.name,
                        "peak_ops_per_s": {str(b): v for b, v in d.peak_ops_per_s},
                        "mem_bandwidth_bytes_per_s": d.mem_bandwidth_bytes_per_s,
                        "description": d.description,
                    }
                    for d in found
                ],
            }
        )
        return
    table = Table(title="roofline devices", title_justify="left")
    for col in ("name", "peak TOPS by bits", "GB/s", "description"):
        table.add_column(col)
    for d in found:
        peaks = ", ".join(f"{b}b: {v / 1e12:g}" for b, v in d.peak_ops_per_s)
        table.add_row(d.name, peaks, f"{d.mem_bandwidth_bytes_per_s / 1e9:g}", d.description)
    _out.print(table)


HwOption = Annotated[str, typer.Option("--hw", help="Hardware preset or YAML file (`tstack hardware` lists them).")]
SeqOption = Annotated[int | None, typer.Option(help="Sequence length (default 128; ViT: its patch count).")]
PhaseOption = Annotated[str | None, typer.Option(help="encoder | generate | prefill | decode.")]


@app.command()
def simulate(
    model: Annotated[str, typer.Argument(help="Preset name, model YAML or HF config.json.")],
    hw: HwOption,
    seq: SeqOption = None,
    phase: PhaseOption = None,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 1,
    fused: Annotated[bool, typer.Option("--fused", help="CNNs: fold BatchNorm and fuse ReLU.")] = False,
    mapper: Annotated[str, typer.Option(help="Matmul tiles: gemmini (the heuristic) | exhaustive | cosa.")] = "gemmini",
    ops: Annotated[bool, typer.Option("--ops", help="List every op (table, or in --json).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.simulate/2 JSON document.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the latency breakdown as a PNG to this folder.")] = None,
) -> None:
    """Latency, utilization, energy and EDP of a model on a hardware design, by category (the paper's Fig. 14)."""
    from tstack.api import simulate as run_simulate
    from tstack.report.simulate_doc import simulate_document, simulate_table, summary_line

    if plot is not None:
        output_dir(plot, "--plot")
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
        table = Table(title="ops", title_justify="left")
        for col in ("op", "where", "cycles", "tiles: m x n x k, or conv N K C P Q R S"):
            table.add_column(col, justify="right" if col == "cycles" else "left")
        for o in result.ops:
            tiles = f"{o.mapping.tile_m} x {o.mapping.tile_n} x {o.mapping.tile_k}" if o.mapping else ""
            if o.conv_mapping is not None:
                tiles = "conv " + " ".join(map(str, o.conv_mapping.tiles))
            table.add_row(o.name, o.where, f"{o.latency_cycles:,.0f}", tiles)
        _out.print(table)


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


@app.command()
def compare(
    model: Annotated[str, typer.Argument(help="Preset name, model YAML or HF config.json.")],
    hw: Annotated[str, typer.Option("--hw", help="Comma-separated designs; speedups are over the first.")],
    seq: SeqOption = None,
    phase: PhaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.compare/1 JSON document.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the breakdown per design as a PNG to this folder.")] = None,
) -> None:
    """The case-study table: each design's latency, speedup over the first, utilization and breakdown."""
    from tstack.api import simulate as run_simulate
    from tstack.report.simulate_doc import compare_document, compare_table

    designs = _split(hw)
    if not designs:
        raise TstackError("--hw needs at least one design, e.g. --hw gemmini-baseline,gemmini-ibert")
    if plot is not None:
        output_dir(plot, "--plot")
    results = [run_simulate(model, d, seq, phase=phase) for d in designs]
    if plot is not None:
        from tstack.report.simulate_plots import breakdown_plot

        written = breakdown_plot(results, confined(plot, f"compare_{safe_name(results[0].workload.model_name)}.png"))
        if not as_json:
            _out.print(f"wrote {written}")
    if as_json:
        emit_json(compare_document(results))
        return
    _out.print(compare_table(results))


@app.command()
def sweep(
    model: Annotated[str, typer.Argument(help="Preset name, model YAML or HF config.json.")],
    hw: HwOption,
    set_: Annotated[
        list[str], typer.Option("--set", help="NAME=V1,V2,...: a memory level's capacity (64K, 2M) or pe=side.")
    ],
    seq: SeqOption = None,
    phase: PhaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.sweep/1 JSON document.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Two axes: write a heat map PNG to this folder.")] = None,
) -> None:
    """Simulate a grid of designs (e.g. the paper's Fig. 13: accumulator x scratchpad)."""
    from rich.progress import track

    from tstack.api import simulate as run_simulate
    from tstack.report.simulate_doc import sweep_document, sweep_table
    from tstack.simulate.sweep import grid, parse_axis
    from tstack.spec.hardware import load_hardware

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


@app.command(name="map")
def map_ops(
    model: Annotated[str, typer.Argument(help="Preset name, model YAML or HF config.json.")],
    hw: HwOption,
    seq: SeqOption = None,
    phase: PhaseOption = None,
    op: Annotated[str | None, typer.Option(help="Only this op (e.g. layer0.ffn.up); default: every matmul.")] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Evaluate this Timeloop-style mapping YAML for --op beside the best.")
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            help="Write the best mapping of --op as Timeloop YAML (a convolution best run as a 7-loop conv: in the "
            "naming of Gemmini's Timeloop description, R S P Q C K N)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.map/1 JSON document.")] = False,
) -> None:
    """Best (least-EDP) mapping of each matmul by exhaustive search, against Gemmini's heuristic."""
    import yaml

    from tstack.api import evaluate_mapping_file, map_model
    from tstack.mapping.conv import ConvMapping
    from tstack.mapping.timeloop_io import conv_to_timeloop, to_gemmini_triple, to_timeloop
    from tstack.report.simulate_doc import map_document, map_table
    from tstack.spec.hardware import load_hardware

    if (mapping or export) and op is None:
        raise TstackError("--mapping and --export work on one op; name it with --op (e.g. --op layer0.ffn.up)")
    if export is not None:
        output_file(export, "--export")
    if mapping is not None:
        assert op is not None
        row, given = evaluate_mapping_file(model, hw, op, mapping, seq)
        if isinstance(given.mapping, ConvMapping):
            described = given.mapping.summary()
        else:
            m = given.mapping
            described = f"{m.tile_m}x{m.tile_n}x{m.tile_k} {''.join(m.order)}"
        _out.print(
            f"{op}: your mapping {described}: {given.latency_cycles:,.0f} cycles, EDP {given.edp / row.best_edp:.2f}x "
            f"the best ({row.heuristic.edp / row.best_edp:.2f}x for Gemmini's heuristic)"
        )
        return
    rows = map_model(model, hw, seq, phase=phase, op=op)
    if export is not None:
        design = load_hardware(hw)
        row = rows[0]
        if row.conv is not None and row.conv_shape is not None:  # a convolution best run as a 7-loop conv
            doc = conv_to_timeloop(row.conv.mapping, row.conv_shape, design)
        else:
            doc = to_timeloop(row.best.mapping, row.shape, design.pe.rows, design.pe.cols)
            if row.best.mapping.order == ("m", "n", "k"):
                t = to_gemmini_triple(row.best.mapping, design.pe.rows)
                _err.print(f"Gemmini tile triple: tile_I={t.tile_i} tile_J={t.tile_j} tile_K={t.tile_k}")
        write_atomic(export, yaml.safe_dump(doc, sort_keys=False))
    if as_json:
        emit_json(map_document(rows))
        return
    _out.print(map_table(rows))


@app.command()
def mapspace(
    hw: HwOption = "gemmini-baseline",
    samples: Annotated[int, typer.Option(help="Random valid mappings per op.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the random draw.")] = 0,
    ops: Annotated[str | None, typer.Option(help="Comma-separated op names (default: the paper's ten).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.mapspace/1 JSON document.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the histogram and CDF (Figs. 18-19) to this folder.")] = None,
    semantics: Annotated[
        str,
        typer.Option(
            help="Mapspace and cost semantics: tstack (default); timeloop (the Gemmini repo's Timeloop mapspace.yaml "
            "as nests under Timeloop's reuse rule: free spatial factors, fixed DRAM order, whole buffers, no "
            "fill/drain; = --constraints gemmini); nest / nest-free (multi-level loop nests: factors and a loop order "
            "at DRAM, scratchpad, accumulator and registers, the whole array or any spatial factor; see "
            "tstack.mapping.nest); timeloop-ids (Gemmini's Timeloop files, mapspace.yaml on arch_default.yaml, "
            "drawn as Timeloop's random mapper draws mapping IDs and priced with Timeloop's own per-access "
            "energies, relative to the best sample: reproduces real Timeloop's statistics; "
            "tstack.mapping.timeloop_sampler)."
        ),
    ] = "tstack",
    sampler: Annotated[
        str,
        typer.Option(
            help="How nests are drawn: uniform (default: uniform over the valid factorizations) or timeloop-ids "
            "(uniform over Timeloop's mapping IDs, factorization x permutation x spatial split x bypass, invalid "
            "ones rejected, relative to the best sample; with --semantics timeloop or nest-free, or --constraints, "
            "and the fanouts of --timeloop-arch if given)."
        ),
    ] = "uniform",
    im2col: Annotated[
        bool,
        typer.Option(
            "--im2col",
            help="Map the ResNet-50 convolutions as their im2col matmuls instead of 7-loop conv mappings (N, K, C, "
            "P, Q, R, S tiles and any DRAM order); the timeloop and nest semantics always use im2col.",
        ),
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option(
            help="With --semantics timeloop, nest or nest-free, or --constraints: write each op's best nest as a "
            "Timeloop mapping for Gemmini's Timeloop description (OP.timeloop.yaml) to this folder."
        ),
    ] = None,
    constraints: Annotated[
        str | None,
        typer.Option(
            help="Sample the nest mapspace a Timeloop mapspace-constraints file describes (a .yaml path, or a preset: "
            "gemmini = Gemmini's mapspace.yaml, dosa-random, dosa-real-gemmini); replaces --semantics."
        ),
    ] = None,
    timeloop_arch: Annotated[
        str | None,
        typer.Option(
            help="Draw and price the nests on a Timeloop v0.3 architecture's array, capacities and bandwidths (a "
            ".yaml path, or a preset: gemmini, dosa-gemmini); energies stay --hw's. Needs a nest semantics or "
            "--constraints."
        ),
    ] = None,
) -> None:
    """The paper's mapspace characterization: EDP of N random valid mappings relative to the best (Figs. 18-20).

    The JSON op entries add, beyond the original fields: mapspace (matmul or conv-7-loop), conv (N, K, C, P, Q, R,
    S, stride, H, W, or null), best_mapping (tiles by dim, DRAM order outermost first), best_latency_cycles and
    best_energy_pj."""
    from rich.progress import track

    from tstack.mapping.mapspace import PAPER_OPS, Semantics, characterize, document_fields
    from tstack.report.simulate_doc import mapspace_document, mapspace_table
    from tstack.spec.hardware import load_hardware

    if not 1 <= samples <= MAX_SAMPLES:
        raise TstackError(f"--samples must be between 1 and {MAX_SAMPLES:,} (the paper draws 100,000); got {samples:,}")
    check_seed(seed)
    design = load_hardware(hw)
    names = list(parse_names(ops, "ops", tuple(PAPER_OPS)))
    unknown = [n for n in names if n not in PAPER_OPS]
    if unknown:
        raise TstackError(f"unknown mapspace op {unknown[0]!r}; choose from: {', '.join(PAPER_OPS)}")
    try:
        chosen = Semantics(semantics)
    except ValueError:
        raise TstackError(
            f"unknown semantics {semantics!r}; choose one of: {', '.join(s.value for s in Semantics)}"
        ) from None
    constrained = None
    if constraints is not None:
        from tstack.mapping.timeloop_constraints import load_nest_constraints

        if chosen is not Semantics.TSTACK:
            raise TstackError("--constraints replaces --semantics; give one of them")
        constrained = load_nest_constraints(constraints)
    if export is not None and chosen is Semantics.TSTACK and constrained is None:
        raise TstackError("--export writes multi-level nests; add --semantics timeloop, nest or nest-free")
    if export is not None:
        output_dir(export, "--export")
    if plot is not None:
        output_dir(plot, "--plot")
    label = chosen.value if constrained is None else f"constraints {constrained.name}"
    arch = None
    if timeloop_arch is not None:
        from tstack.mapping.timeloop_arch import load_timeloop_arch

        if chosen is Semantics.TSTACK and constrained is None:
            raise TstackError(
                "--timeloop-arch prices nests; add --semantics timeloop, nest or nest-free, or --constraints"
            )
        arch = load_timeloop_arch(timeloop_arch)
        label += f" on {arch.name}"
    id_space = _id_space(sampler, chosen, constraints, timeloop_arch)
    if id_space is not None:
        label += ", Timeloop's ID sampler"
    stats = [
        characterize(
            n,
            PAPER_OPS[n],
            design,
            samples,
            seed,
            chosen,
            im2col=im2col,
            constraints=constrained,
            arch=arch,
            id_space=id_space,
        )
        for n in track(names, description="sampling", console=_err, disable=as_json)
    ]
    if export is not None:
        import yaml

        from tstack.mapping.nest import NestResult
        from tstack.mapping.timeloop_io import nest_to_timeloop

        for st in stats:
            assert isinstance(st.best, NestResult)
            path = confined(export, f"{safe_name(st.name)}.timeloop.yaml")
            write_atomic(path, yaml.safe_dump(nest_to_timeloop(st.best.nests), sort_keys=False))
            if not as_json:
                _err.print(f"wrote {path}")
    if plot is not None:
        from tstack.report.simulate_plots import mapspace_plot

        suffix = "" if label == Semantics.TSTACK.value else "_" + label.replace("constraints ", "").replace(" on ", "_")
        written = mapspace_plot(stats, confined(plot, safe_name(f"mapspace_{design.name}{suffix}") + ".png"), label)
        if not as_json:
            _err.print(f"wrote {written}")
    if as_json:
        doc = mapspace_document(design.name, stats, label)
        for entry, st in zip(doc["ops"], stats, strict=True):
            entry.update(document_fields(st))
        emit_json(doc)
        return
    _out.print(mapspace_table(stats, label))


def _id_space(sampler: str, semantics: Semantics, constraints: str | None, timeloop_arch: str | None) -> IdSpace | None:
    """The Timeloop ID structure `--sampler timeloop-ids` draws from: the constraints file's (the semantics' own file:
    timeloop = gemmini, nest-free = dosa-random) on --timeloop-arch's fanouts; None for the uniform sampler. The
    timeloop-ids semantics always draws so, from Gemmini's files."""
    from tstack.mapping.mapspace import Semantics
    from tstack.mapping.timeloop_sampler import Sampler, load_id_space

    try:
        chosen = Sampler(sampler)
    except ValueError:
        raise TstackError(
            f"unknown sampler {sampler!r}; choose one of: {', '.join(s.value for s in Sampler)}"
        ) from None
    if semantics is Semantics.TIMELOOP_IDS:
        return load_id_space("gemmini", timeloop_arch or "gemmini")
    if chosen is Sampler.UNIFORM:
        return None
    files = {Semantics.TIMELOOP: "gemmini", Semantics.NEST_FREE: "dosa-random"}
    source = constraints or files.get(semantics)
    if source is None:
        raise TstackError(
            f"--sampler timeloop-ids draws Timeloop mapping IDs of a constraints file; --semantics {semantics.value} "
            "has none: use --semantics timeloop, nest-free or timeloop-ids, or --constraints"
        )
    return load_id_space(source, timeloop_arch)


@app.command()
def fusion(
    model: Annotated[str, typer.Argument(help="An encoder preset (the paper: bert-base).")] = "bert-base",
    hw: HwOption = "gemmini-ibert",
    seq: Annotated[str, typer.Option(help="Sequence lengths, comma-separated.")] = "512,4096",
    accumulator: Annotated[str, typer.Option(help="Accumulator sizes to compare, comma-separated.")] = "128K,256K",
    scratchpad: Annotated[str, typer.Option(help="Scratchpad size (the paper fixes 256K).")] = "256K",
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.fusion/1 JSON document.")] = False,
) -> None:
    """Matmul + Softmax / LayerNorm, non-fused vs fusion-optimized tiling (the paper's Figs. 21-22)."""
    from tstack.report.simulate_doc import fusion_document, fusion_table
    from tstack.simulate.fusion import fusion_study
    from tstack.simulate.sweep import apply, parse_axis
    from tstack.spec import load_model
    from tstack.spec.hardware import load_hardware
    from tstack.workload import ModelSpec

    spec = load_model(model)
    if not isinstance(spec, ModelSpec):
        raise TstackError(f"{model!r} is a CNN; the fusion study pairs Transformer matmuls with Softmax/LayerNorm")
    base = load_hardware(hw)
    base = apply(base, spad := parse_axis(f"scratchpad={scratchpad}", base), spad.values[0])
    accs = parse_axis(f"accumulator={accumulator}", base)
    results = [
        r for acc in accs.values for s in (_parse_seq(seq) or []) for r in fusion_study(spec, apply(base, accs, acc), s)
    ]
    if as_json:
        emit_json(fusion_document(results))
        return
    _out.print(fusion_table(results))


@app.command()
def hardware(
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.hardware/1 JSON document.")] = False,
) -> None:
    """List the hardware presets."""
    from tstack.spec import preset_names
    from tstack.spec.hardware import load_hardware

    designs = [load_hardware(n) for n in preset_names("hardware")]
    if as_json:
        emit_json(
            {
                "schema": "tstack.hardware/1",
                "hardware": [
                    {
                        "name": d.name,
                        "description": d.description,
                        "pe": f"{d.pe.rows}x{d.pe.cols}",
                        "memory": {lv.name: lv.capacity_bytes for lv in design_of(d).memories},
                        "links": [
                            {"parent": k.parent, "children": list(k.children), "bytes_per_cycle": k.bytes_per_cycle}
                            for k in design_of(d).all_links
                        ],
                    }
                    for d in designs
                ],
            }
        )
        return
    table = Table(title="hardware presets", title_justify="left")
    for col in ("name", "array", "on-chip memory", "links (B/cycle)", "description"):
        table.add_column(col)
    for d in designs:
        mem = ", ".join(f"{lv.name} {lv.capacity_bytes // 1024}K" for lv in design_of(d).memories[:-1])
        links = ", ".join(f"{k.parent}->{'+'.join(k.children)} {k.bytes_per_cycle:g}" for k in design_of(d).all_links)
        table.add_row(d.name, f"{d.pe.rows}x{d.pe.cols}", mem, links, d.description)
    _out.print(table)


def _register_commands() -> None:
    """Commands that live in their own modules (each imports its heavy dependencies only when run)."""
    from tstack.commands.kernels import register as register_kernels
    from tstack.commands.nas import register as register_nas
    from tstack.commands.profile import register as register_profile
    from tstack.commands.study import register as register_study

    register_kernels(app)
    register_nas(app)
    register_profile(app)
    register_study(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
