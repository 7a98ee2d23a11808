"""Timeloop-style files read for the core: a user's mapping YAML (`tstack map --mapping FILE`).

`tstack.mapping.timeloop_io` turns a parsed mapping document into a `Mapping` or `ConvMapping` (`from_timeloop`,
`conv_from_timeloop`); reading the file is boundary work and lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tstack.fileio import read_yaml


def read_mapping_yaml(path: Path) -> Any:
    """The parsed content of a Timeloop-style mapping YAML file, or one line saying why it cannot be read."""
    return read_yaml(path, "mapping")
