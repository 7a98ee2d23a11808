"""`tstack models` and `tstack devices`: the model and roofline-device presets (documents in
`tstack.report.presets_doc`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tstack.commands.common import emit_json

_out = Console()


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.models/1 JSON document.")] = False,
) -> None:
    """List the model presets."""
    from tstack.report.presets_doc import ModelRow, models_document, models_table
    from tstack.spec import load_model, preset_names, read_preset
    from tstack.workload import ModelSpec, count_params

    rows = []
    for name in preset_names("models"):
        spec = load_model(name)
        raw = read_preset("models", name)
        kind = str(spec.family) if isinstance(spec, ModelSpec) else "cnn"
        rows.append(ModelRow(name, kind, count_params(spec), raw.get("description", "")))
    if as_json:
        emit_json(models_document(rows))
        return
    _out.print(models_table(rows))


def devices(
    as_json: Annotated[bool, typer.Option("--json", help="Print a tstack.devices/1 JSON document.")] = False,
) -> None:
    """List the roofline device presets."""
    from tstack.report.presets_doc import devices_document, devices_table
    from tstack.spec import load_device, preset_names

    found = [load_device(n) for n in preset_names("devices")]
    if as_json:
        emit_json(devices_document(found))
        return
    _out.print(devices_table(found))


def register(app: typer.Typer) -> None:
    """Add `models` and `devices` to the `tstack` app."""
    app.command()(models)
    app.command()(devices)
