"""A NAS search space from a preset name (`paper`, `cpu`: `presets/nas/*.yaml`) or a YAML file.

`tstack.nas.space` holds the space and checks its fields (`space_from_dict`); finding and reading the file is
boundary work and lives here, so the NAS core receives a `SearchSpace` value."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tstack.errors import SpecError
from tstack.fileio import read_yaml
from tstack.nas.space import SearchSpace, space_from_dict

SPACE_PRESETS = ("paper", "cpu")


def load_space(source: str | Path) -> SearchSpace:
    """A search space from a preset name (`paper`, `cpu`) or a YAML file."""
    path = Path(source)
    if str(source) in SPACE_PRESETS:
        path = Path(str(resources.files("tstack.presets") / "nas" / f"{source}.yaml"))
    elif not path.is_file():
        presets = ", ".join(SPACE_PRESETS)
        raise SpecError(f"unknown search space {str(source)!r}; use a preset ({presets}) or a YAML file")
    data = read_yaml(path, "search space")
    if not isinstance(data, dict):
        raise SpecError(f"search space file {path} must hold a mapping of fields")
    return space_from_dict(data, default_name=path.stem)
