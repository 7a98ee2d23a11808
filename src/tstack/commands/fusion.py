"""`tstack fusion`: matmul + Softmax / LayerNorm, non-fused vs fusion-optimized tiling (document and table in
`tstack.report.simulate_doc`). Its work is a few pairs per sequence length and accumulator size, milliseconds each,
so it has no run-time guard."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tstack.commands.common import HwOption, emit_json, json_option, parse_ints
from tstack.errors import TstackError

_out = Console()


def fusion(
    model: Annotated[str, typer.Argument(help="An encoder preset (the paper: bert-base).")] = "bert-base",
    hw: HwOption = "gemmini-ibert",
    seq: Annotated[str, typer.Option(help="Sequence lengths, comma-separated.")] = "512,4096",
    accumulator: Annotated[str, typer.Option(help="Accumulator sizes to compare, comma-separated.")] = "128K,256K",
    scratchpad: Annotated[str, typer.Option(help="Scratchpad size (the paper fixes 256K).")] = "256K",
    as_json: Annotated[bool, json_option("tstack.fusion/1")] = False,
) -> None:
    """Matmul + Softmax / LayerNorm, non-fused vs fusion-optimized tiling (the paper's Figs. 21-22)."""
    from tstack.report.simulate_doc import fusion_document, fusion_table
    from tstack.simulate.fusion import fusion_study
    from tstack.simulate.sweep import apply
    from tstack.spec import load_model
    from tstack.spec.hardware import load_hardware
    from tstack.spec.sweep import parse_axis
    from tstack.workload import ModelSpec

    spec = load_model(model)
    if not isinstance(spec, ModelSpec):
        raise TstackError(f"{model!r} is a CNN; the fusion study pairs Transformer matmuls with Softmax/LayerNorm")
    base = load_hardware(hw)
    base = apply(base, spad := parse_axis(f"scratchpad={scratchpad}", base), spad.values[0])
    accs = parse_axis(f"accumulator={accumulator}", base)
    seqs = parse_ints(seq, "seq", "128,512,4096") or []
    results = [r for acc in accs.values for s in seqs for r in fusion_study(spec, apply(base, accs, acc), s)]
    if as_json:
        emit_json(fusion_document(results))
        return
    _out.print(fusion_table(results))


def register(app: typer.Typer) -> None:
    """Add `fusion` to the `tstack` app."""
    app.command()(fusion)
