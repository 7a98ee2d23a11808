"""`tstack map` and `tstack mapspace`: the best mapping of each matmul, and the paper's mapspace characterization
(documents and tables in `tstack.report.simulate_doc`, figures in `tstack.report.simulate_plots`).

Both estimate their work before starting (`tstack.commands.budget`) and refuse past the limit without
`--allow-slow`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from tstack.commands.budget import (
    AllowSlowOption,
    WorkEstimate,
    map_estimate,
    mapspace_estimate,
    named_workload,
    predicted_progress,
    refuse_if_slow,
)
from tstack.commands.common import (
    MAX_SAMPLES,
    HwOption,
    ModelArgument,
    PhaseOption,
    SeqOption,
    check_seed,
    emit_json,
    json_option,
    parse_names,
    path_option,
)
from tstack.errors import TstackError
from tstack.fileio import confined, output_dir, output_file, safe_name, write_atomic

if TYPE_CHECKING:
    from tstack.hardware.types import Hardware
    from tstack.mapping.mapspace import MapspaceStats, Semantics
    from tstack.mapping.nest.matmul import NestConstraints
    from tstack.mapping.op_mapping import OpMapping
    from tstack.mapping.timeloop.arch import TimeloopArch
    from tstack.mapping.timeloop.sampler import IdSpace

_out = Console()
_err = Console(stderr=True)


def _map_estimate(model: str, hw: str, seq: int | None, phase: str | None) -> WorkEstimate | None:
    """The predicted time of `api.map_model`; None when an argument is bad (the run then says what is wrong)."""
    workload = named_workload(model, hw, seq, phase)
    return None if workload is None else map_estimate(workload)


def map_ops(
    model: ModelArgument,
    hw: HwOption,
    seq: SeqOption = None,
    phase: PhaseOption = None,
    op: Annotated[str | None, typer.Option(help="Only this op (e.g. layer0.ffn.up); default: every matmul.")] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Evaluate this Timeloop-style mapping YAML for --op beside the best.")
    ] = None,
    export: Annotated[
        Path | None,
        path_option(
            "--export",
            "Write the best mapping of --op as Timeloop YAML (a convolution best run as a 7-loop conv: in the "
            "naming of Gemmini's Timeloop description, R S P Q C K N).",
            "file",
        ),
    ] = None,
    as_json: Annotated[bool, json_option("tstack.map/1")] = False,
    allow_slow: AllowSlowOption = False,
) -> None:
    """Best (least-EDP) mapping of each matmul by exhaustive search, against Gemmini's heuristic."""
    from tstack.api import evaluate_mapping_file, map_model
    from tstack.mapping.conv.loopnest import ConvMapping
    from tstack.report.simulate_doc import map_document, map_table

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
    # --op maps one shape; the estimate counts a whole model's shapes
    estimate = None if op is not None else _map_estimate(model, hw, seq, phase)
    slow = estimate is not None and refuse_if_slow(estimate, allow_slow, "map", "--op for one op, or a shorter --seq")
    with predicted_progress(estimate or WorkEstimate(0.0, ""), "mapping", show=slow):
        rows = map_model(model, hw, seq, phase=phase, op=op)
    if export is not None:
        _export_best(rows[0], hw, export)
    if as_json:
        emit_json(map_document(rows))
        return
    _out.print(map_table(rows))


def _export_best(row: OpMapping, hw: str, path: Path) -> None:
    """Write one op's best mapping as Timeloop YAML (a convolution best run as a 7-loop conv in the conv's own
    dimensions), and Gemmini's tile triple on stderr where the mapping is one."""
    import yaml

    from tstack.mapping.timeloop.mapping_io import conv_to_timeloop, to_gemmini_triple, to_timeloop
    from tstack.spec.hardware import load_hardware

    design = load_hardware(hw)
    if row.conv is not None and row.conv_shape is not None:
        doc = conv_to_timeloop(row.conv.mapping, row.conv_shape, design)
    else:
        doc = to_timeloop(row.best.mapping, row.shape, design.pe.rows, design.pe.cols)
        if row.best.mapping.order == ("m", "n", "k"):
            t = to_gemmini_triple(row.best.mapping, design.pe.rows)
            _err.print(f"Gemmini tile triple: tile_I={t.tile_i} tile_J={t.tile_j} tile_K={t.tile_k}")
    write_atomic(path, yaml.safe_dump(doc, sort_keys=False))


def mapspace(
    hw: HwOption = "gemmini-baseline",
    samples: Annotated[int, typer.Option(help="Random valid mappings per op.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the random draw.")] = 0,
    ops: Annotated[str | None, typer.Option(help="Comma-separated op names (default: the paper's ten).")] = None,
    as_json: Annotated[bool, json_option("tstack.mapspace/1")] = False,
    plot: Annotated[
        Path | None, path_option("--plot", "Write the histogram and CDF (Figs. 18-19) to this folder.")
    ] = None,
    semantics: Annotated[
        str,
        typer.Option(
            help="Mapspace and cost semantics: tstack (default); timeloop (the Gemmini repo's Timeloop mapspace.yaml "
            "as nests under Timeloop's reuse rule: free spatial factors, fixed DRAM order, whole buffers, no "
            "fill/drain; = --constraints gemmini); nest / nest-free (multi-level loop nests: factors and a loop order "
            "at DRAM, scratchpad, accumulator and registers, the whole array or any spatial factor; see "
            "tstack.mapping.nest.matmul); timeloop-ids (Gemmini's Timeloop files, mapspace.yaml on arch_default.yaml, "
            "drawn as Timeloop's random mapper draws mapping IDs and priced with Timeloop's own per-access "
            "energies, relative to the best sample: reproduces real Timeloop's statistics; "
            "tstack.mapping.timeloop.sampler)."
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
        path_option(
            "--export",
            "With --semantics timeloop, nest or nest-free, or --constraints: write each op's best nest as a "
            "Timeloop mapping for Gemmini's Timeloop description (OP.timeloop.yaml) to this folder.",
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
    allow_slow: AllowSlowOption = False,
) -> None:
    """The paper's mapspace characterization: EDP of N random valid mappings relative to the best (Figs. 18-20).

    The JSON op entries add, beyond the original fields: mapspace (matmul or conv-7-loop), conv (N, K, C, P, Q, R,
    S, stride, H, W, or null), best_mapping (tiles by dim, DRAM order outermost first), best_latency_cycles and
    best_energy_pj."""
    from rich.progress import track

    from tstack.mapping.mapspace import PAPER_OPS, characterize
    from tstack.report.simulate_doc import mapspace_document, mapspace_table
    from tstack.spec.timeloop import gemmini_timeloop_files

    setup = _mapspace_setup(hw, samples, seed, ops, semantics, sampler, export, plot, constraints, timeloop_arch)
    nests = setup.semantics.value if setup.constraints is None else "nest"
    refuse_if_slow(
        mapspace_estimate(len(setup.names), samples, nests), allow_slow, "mapspace", "fewer --samples or --ops"
    )
    stats = [
        characterize(
            n,
            PAPER_OPS[n],
            setup.design,
            samples,
            seed,
            setup.semantics,
            im2col=im2col,
            constraints=setup.constraints,
            arch=setup.arch,
            id_space=setup.id_space,
            timeloop=gemmini_timeloop_files(),
        )
        for n in track(setup.names, description="sampling", console=_err, disable=as_json)
    ]
    if export is not None:
        _export_nests(stats, export, quiet=as_json)
    if plot is not None:
        from tstack.mapping.mapspace import Semantics
        from tstack.report.simulate_plots import mapspace_plot

        label = setup.label
        suffix = "" if label == Semantics.TSTACK.value else "_" + label.replace("constraints ", "").replace(" on ", "_")
        name = safe_name(f"mapspace_{setup.design.name}{suffix}") + ".png"
        written = mapspace_plot(stats, confined(plot, name), label)
        if not as_json:
            _err.print(f"wrote {written}")
    if as_json:
        emit_json(mapspace_document(setup.design.name, stats, setup.label))
        return
    _out.print(mapspace_table(stats, setup.label))


@dataclass(frozen=True, slots=True)
class MapspaceSetup:
    """What `mapspace`'s options ask for, checked: the design, the ops, the semantics and the files that refine it,
    and the label the outputs carry."""

    design: Hardware
    names: tuple[str, ...]
    semantics: Semantics
    constraints: NestConstraints | None
    arch: TimeloopArch | None
    id_space: IdSpace | None
    label: str


def _mapspace_setup(
    hw: str,
    samples: int,
    seed: int,
    ops: str | None,
    semantics: str,
    sampler: str,
    export: Path | None,
    plot: Path | None,
    constraints: str | None,
    timeloop_arch: str | None,
) -> MapspaceSetup:
    """Check `mapspace`'s options against each other and the output folders, and load the files they name; one line
    on the first problem."""
    from tstack.mapping.mapspace import PAPER_OPS, Semantics
    from tstack.spec.hardware import load_hardware

    if not 1 <= samples <= MAX_SAMPLES:
        raise TstackError(f"--samples must be between 1 and {MAX_SAMPLES:,} (the paper draws 100,000); got {samples:,}")
    check_seed(seed)
    design = load_hardware(hw)
    names = parse_names(ops, "ops", tuple(PAPER_OPS))
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
        from tstack.spec.timeloop import load_nest_constraints

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
        from tstack.spec.timeloop import load_timeloop_arch

        if chosen is Semantics.TSTACK and constrained is None:
            raise TstackError(
                "--timeloop-arch prices nests; add --semantics timeloop, nest or nest-free, or --constraints"
            )
        arch = load_timeloop_arch(timeloop_arch)
        label += f" on {arch.name}"
    id_space = _id_space(sampler, chosen, constraints, timeloop_arch)
    if id_space is not None:
        label += ", Timeloop's ID sampler"
    return MapspaceSetup(design, names, chosen, constrained, arch, id_space, label)


def _export_nests(stats: list[MapspaceStats], folder: Path, *, quiet: bool) -> None:
    """Write each op's best nest as a Timeloop mapping for Gemmini's Timeloop description, OP.timeloop.yaml."""
    import yaml

    from tstack.mapping.nest.matmul import NestResult
    from tstack.mapping.timeloop.mapping_io import nest_to_timeloop

    for st in stats:
        assert isinstance(st.best, NestResult)
        path = confined(folder, f"{safe_name(st.name)}.timeloop.yaml")
        write_atomic(path, yaml.safe_dump(nest_to_timeloop(st.best.nests), sort_keys=False))
        if not quiet:
            _err.print(f"wrote {path}")


def _id_space(sampler: str, semantics: Semantics, constraints: str | None, timeloop_arch: str | None) -> IdSpace | None:
    """The Timeloop ID structure `--sampler timeloop-ids` draws from: the constraints file's (the semantics' own file:
    timeloop = gemmini, nest-free = dosa-random) on --timeloop-arch's fanouts; None for the uniform sampler. The
    timeloop-ids semantics always draws so, from Gemmini's files."""
    from tstack.mapping.mapspace import Semantics
    from tstack.mapping.timeloop.sampler import Sampler
    from tstack.spec.timeloop import load_id_space

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


def register(app: typer.Typer) -> None:
    """Add `map` and `mapspace` to the `tstack` app."""
    app.command(name="map")(map_ops)
    app.command()(mapspace)
