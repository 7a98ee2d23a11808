"""`tstack hardware`: the hardware presets (document in `tstack.report.presets_doc`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tstack.commands.common import emit_json

_out = Console()


def hardware(
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.hardware/1 JSON document.")] = False,
) -> None:
    """List the hardware presets."""
    from tstack.report.presets_doc import hardware_document, hardware_table
    from tstack.spec import preset_names
    from tstack.spec.hardware import load_hardware

    designs = [load_hardware(n) for n in preset_names("hardware")]
    if as_json:
        emit_json(hardware_document(designs))
        return
    _out.print(hardware_table(designs))


def register(app: typer.Typer) -> None:
    """Add `hardware` to the `tstack` app."""
    app.command()(hardware)
