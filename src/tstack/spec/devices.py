"""Roofline device descriptions: presets (YAML data with sources) and user files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tstack.errors import SpecError
from tstack.fileio import read_yaml
from tstack.spec.loading import read_preset
from tstack.units import gb_per_s_to_bytes_per_s, tera_per_s_to_per_s
from tstack.workload.roofline import RooflineDevice


class DeviceFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    source: str = ""
    peak_tera_ops_per_s: dict[int, Annotated[float, Field(gt=0, allow_inf_nan=False)]]  # keyed by operand bits
    mem_bandwidth_gb_per_s: Annotated[float, Field(gt=0, allow_inf_nan=False)]


def load_device(source: str | Path) -> RooflineDevice:
    """A device from a preset name or a YAML file with the fields of `DeviceFile`."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        data = read_yaml(path, "device")
        origin = str(path)
    else:
        data = read_preset("devices", str(source))
        origin = f"device preset {source}"
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: expected a mapping of device fields, got {type(data).__name__}")
    try:
        f = DeviceFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SpecError(f"{origin}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    return RooflineDevice(
        name=f.name,
        peak_ops_per_s=tuple(sorted((b, tera_per_s_to_per_s(v)) for b, v in f.peak_tera_ops_per_s.items())),
        mem_bandwidth_bytes_per_s=gb_per_s_to_bytes_per_s(f.mem_bandwidth_gb_per_s),
        description=f.description,
        source=f.source,
    )
