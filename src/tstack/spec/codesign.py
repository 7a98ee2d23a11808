"""Co-design hardware spaces from a preset name (``presets/codesign/NAME.yaml``) or a YAML file.

The boundary half of `tstack.codesign.space`: this module reads the document and resolves its ``base`` field (a
hardware preset name or a hardware YAML file, default ``gemmini-ibert``) into a `Hardware`; the core validates the
parameters around that value. The core never names a preset or reads a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tstack.codesign.space import SPACE_FIELDS, HardwareSpace, space_from_dict
from tstack.errors import SpecError
from tstack.hardware.types import Hardware
from tstack.spec.area import load_tables
from tstack.spec.hardware import load_hardware
from tstack.spec.loading import yaml_preset_or_file

PRESETS = Path(__file__).resolve().parent.parent / "presets" / "codesign"
DEFAULT_BASE = "gemmini-ibert"


def hardware_space_names() -> list[str]:
    """The names of the shipped co-design spaces."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def hardware_space_from_dict(
    data: Mapping[str, Any], default_name: str = "custom", base: Hardware | None = None
) -> HardwareSpace:
    """A validated space from a space document; its ``base`` is resolved here unless `base` is given."""
    unknown = set(data) - SPACE_FIELDS
    if unknown:
        raise SpecError(
            f"codesign space: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(SPACE_FIELDS))}"
        )
    if base is None:
        name = data.get("base", DEFAULT_BASE)
        if not isinstance(name, str) or not name:
            raise SpecError(f"codesign space: `base` must name a hardware preset or YAML file, got {name!r}")
        base = load_hardware(name)
    return space_from_dict(data, base, default_name=default_name, tables=load_tables())


def load_hardware_space(source: str | Path, base: Hardware | None = None) -> HardwareSpace:
    """A hardware space from a preset name (`hardware_space_names`) or a YAML file, around its own ``base`` or, when
    given, around `base` instead (the same parameters about another design)."""
    data, path = yaml_preset_or_file(source, PRESETS, "codesign space")
    if not isinstance(data, Mapping):
        raise SpecError(f"codesign space file {path} must hold a mapping with `parameters`")
    return hardware_space_from_dict(data, default_name=path.stem, base=base)
