"""Architecture rules that keep one reading of the hardware: nothing outside it touches the raw levels or links."""

from __future__ import annotations

import ast
from pathlib import Path

import tstack

SRC = Path(tstack.__file__).resolve().parent
# the core type, its one reading, and the boundary that builds it from a file
ALLOWED = {"hardware/types.py", "hardware/design.py", "spec/hardware.py"}
RAW = {"levels", "links", "innermost_holding", "bandwidth_bytes_per_cycle"}


def raw_reads(source: str) -> list[tuple[int, str]]:
    """(line, attribute) of every access to a raw hardware attribute in `source`."""
    return [
        (node.lineno, node.attr)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in RAW
    ]


def test_only_the_design_reading_touches_raw_levels_and_links() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{line}: .{attr}"
        for path in sorted(SRC.rglob("*.py"))
        if str(path.relative_to(SRC)) not in ALLOWED
        for line, attr in raw_reads(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "read the design through tstack.hardware.design.design_of:\n" + "\n".join(offenders)


def test_the_rule_catches_a_raw_read() -> None:
    """The check itself: a module that reads `hw.levels` or a level's bandwidth is caught."""
    assert raw_reads("def f(hw):\n    return hw.levels[-1].bandwidth_bytes_per_cycle\n") == [
        (2, "bandwidth_bytes_per_cycle"),
        (2, "levels"),
    ]
    assert raw_reads("def f(d):\n    return d.scratchpad.capacity_bytes\n") == []
