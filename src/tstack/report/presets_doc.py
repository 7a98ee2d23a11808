"""JSON documents and rich tables of the preset catalogues: models, roofline devices, hardware designs.

`tstack.models/1`: schema, models [{name, family (encoder | decoder | cnn), params, description}].
`tstack.devices/1`: schema, devices [{name, peak_ops_per_s {bits: ops/s}, mem_bandwidth_bytes_per_s, description}].
`tstack.hardware/1`: schema, hardware [{name, description, pe ("RxC"), memory {level: capacity_bytes},
  links [{parent, children, bytes_per_cycle}]}].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from tstack.hardware.design import design_of
from tstack.hardware.types import Hardware
from tstack.workload.roofline import RooflineDevice


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One model preset as the catalogue lists it."""

    name: str
    family: str
    params: int
    description: str


def models_document(rows: Sequence[ModelRow]) -> dict[str, Any]:
    """The `tstack.models/1` document of the model presets."""
    return {
        "schema": "tstack.models/1",
        "models": [
            {"name": r.name, "family": r.family, "params": r.params, "description": r.description} for r in rows
        ],
    }


def models_table(rows: Sequence[ModelRow]) -> Table:
    """The model presets, one row each."""
    table = Table(title="model presets", title_justify="left")
    for col in ("name", "family", "parameters", "description"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    for r in rows:
        table.add_row(r.name, r.family, f"{r.params:,}", r.description)
    return table


def devices_document(devices: Sequence[RooflineDevice]) -> dict[str, Any]:
    """The `tstack.devices/1` document: each device's peak ops per second by operand bits and its bandwidth."""
    return {
        "schema": "tstack.devices/1",
        "devices": [
            {
                "name": d.name,
                "peak_ops_per_s": {str(b): v for b, v in d.peak_ops_per_s},
                "mem_bandwidth_bytes_per_s": d.mem_bandwidth_bytes_per_s,
                "description": d.description,
            }
            for d in devices
        ],
    }


def devices_table(devices: Sequence[RooflineDevice]) -> Table:
    """The roofline devices, peaks in TOPS and bandwidth in GB/s."""
    table = Table(title="roofline devices", title_justify="left")
    for col in ("name", "peak TOPS by bits", "GB/s", "description"):
        table.add_column(col)
    for d in devices:
        peaks = ", ".join(f"{b}b: {v / 1e12:g}" for b, v in d.peak_ops_per_s)
        table.add_row(d.name, peaks, f"{d.mem_bandwidth_bytes_per_s / 1e9:g}", d.description)
    return table


def hardware_document(designs: Sequence[Hardware]) -> dict[str, Any]:
    """The `tstack.hardware/1` document: each design's array, memory capacities and links."""
    return {
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


def hardware_table(designs: Sequence[Hardware]) -> Table:
    """The hardware designs: array, on-chip capacities in KiB, links in bytes per cycle."""
    table = Table(title="hardware presets", title_justify="left")
    for col in ("name", "array", "on-chip memory", "links (B/cycle)", "description"):
        table.add_column(col)
    for d in designs:
        mem = ", ".join(f"{lv.name} {lv.capacity_bytes // 1024}K" for lv in design_of(d).memories[:-1])
        links = ", ".join(f"{k.parent}->{'+'.join(k.children)} {k.bytes_per_cycle:g}" for k in design_of(d).all_links)
        table.add_row(d.name, f"{d.pe.rows}x{d.pe.cols}", mem, links, d.description)
    return table
