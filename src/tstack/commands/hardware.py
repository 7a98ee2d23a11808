"""`tstack hardware`: the hardware presets (document in `tstack.report.presets_doc`; the listing is
`tstack.commands.presets.list_presets`)."""

from __future__ import annotations

from typing import Annotated

import typer

from tstack.commands.common import json_option
from tstack.commands.presets import list_presets


def hardware(as_json: Annotated[bool, json_option("tstack.hardware/1")] = False) -> None:
    """List the hardware presets."""
    from tstack.report.presets_doc import hardware_document, hardware_table
    from tstack.spec.hardware import load_hardware

    list_presets("hardware", load_hardware, hardware_document, hardware_table, as_json)


def register(app: typer.Typer) -> None:
    """Add `hardware` to the `tstack` app."""
    app.command()(hardware)
