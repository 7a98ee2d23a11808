"""Component tables for the area model (`src/tstack/presets/area/*.json`, or a table file `benchmarks/area/
build_tables.py` writes), found and read for the core: `tstack.hardware.area_tables.tables_from_document` turns the
parsed document into `AreaTables`, and the area model (`tstack.hardware.area`) takes the table as a value.

`load_tables()` is the default table (`hwcomponents-22nm`), what `tstack codesign` and the co-design study price
designs with; a table is read once per process (keyed by its resolved path).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from tstack.fileio import read_json
from tstack.hardware.area_tables import DEFAULT_TABLE, AreaTableError, AreaTables, tables_from_document


def _preset_dir() -> Path:
    return Path(str(resources.files("tstack.presets") / "area"))


def table_names() -> list[str]:
    """The committed tables, by name."""
    return sorted(p.stem for p in _preset_dir().glob("*.json") if not p.stem.startswith("cacti-"))


def load_tables(name_or_path: str | Path = DEFAULT_TABLE) -> AreaTables:
    """A committed table by name (`table_names()`), or a table file written by `benchmarks/area/build_tables.py`."""
    text = str(name_or_path)
    if text.endswith(".json"):
        return _load_path(str(Path(text).resolve()))
    if text not in table_names():
        raise AreaTableError(f"no area table {text!r}; known: {', '.join(table_names())}, or a .json path")
    return _load_path(str(_preset_dir() / f"{text}.json"))


def tables_for_node(tech_node_nm: int) -> AreaTables:
    """The hwcomponents table at `tech_node_nm`."""
    name = f"hwcomponents-{int(tech_node_nm)}nm"
    if name not in table_names():
        nodes = sorted(
            load_tables(n).tech_node_nm for n in table_names() if n.startswith("hwcomponents-") and n.endswith("nm")
        )
        raise AreaTableError(
            f"no area table for {tech_node_nm} nm; committed tables cover {', '.join(f'{n} nm' for n in nodes)}; "
            f"build one with benchmarks/area/build_tables.py --node {tech_node_nm} (Python 3.12 with tstack[area])"
        )
    return load_tables(name)


@lru_cache(maxsize=16)
def _load_path(path: str) -> AreaTables:
    doc = read_json(path, "area table", error=AreaTableError)
    return tables_from_document(doc, origin=path)
