"""`tstack models` and `tstack devices`: the model and roofline-device presets (documents in
`tstack.report.presets_doc`), and the listing that they and `tstack hardware` share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from tstack.commands.common import emit_json, json_option

if TYPE_CHECKING:
    from rich.table import Table

    from tstack.report.presets_doc import ModelRow

_out = Console()
T = TypeVar("T")


def list_presets(
    kind: str,
    load: Callable[[str], T],
    document: Callable[[Sequence[T]], Any],
    table: Callable[[Sequence[T]], Table],
    as_json: bool,
) -> None:
    """Every preset of `kind` (`models`, `devices`, `hardware`), each read by `load`, printed as its JSON `document`
    under --json, else as its `table`: the one listing behind `tstack models`, `devices` and `hardware`."""
    from tstack.spec import preset_names

    found = [load(name) for name in preset_names(kind)]
    if as_json:
        emit_json(document(found))
        return
    _out.print(table(found))


def models(as_json: Annotated[bool, json_option("tstack.models/1")] = False) -> None:
    """List the model presets."""
    from tstack.report.presets_doc import ModelRow, models_document, models_table
    from tstack.spec import load_model, read_preset
    from tstack.workload import ModelSpec, count_params

    def row(name: str) -> ModelRow:
        spec = load_model(name)
        raw = read_preset("models", name)
        kind = str(spec.family) if isinstance(spec, ModelSpec) else "cnn"
        return ModelRow(name, kind, count_params(spec), raw.get("description", ""))

    list_presets("models", row, models_document, models_table, as_json)


def devices(as_json: Annotated[bool, json_option("tstack.devices/1")] = False) -> None:
    """List the roofline device presets."""
    from tstack.report.presets_doc import devices_document, devices_table
    from tstack.spec import load_device

    list_presets("devices", load_device, devices_document, devices_table, as_json)


def register(app: typer.Typer) -> None:
    """Add `models` and `devices` to the `tstack` app."""
    app.command()(models)
    app.command()(devices)
