"""Library code sets no environment variable: a process's environment belongs to its entry point (the CLI, or the
user's own program), where a setting is visible and can be overridden (#17)."""

from __future__ import annotations

import ast
from pathlib import Path

import tstack

_SRC = Path(tstack.__file__).parent
_ENTRY = ("cli.py", "__main__.py", "commands")  # the CLI entry may set what a command needs before torch loads
_WRITERS = {"setdefault", "update", "pop", "clear", "putenv", "unsetenv", "__setitem__"}


def _environment_writes(tree: ast.AST) -> list[int]:
    """Lines that write `os.environ` (item assignment, del, or a mutating method) or call `os.putenv`."""
    lines: list[int] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        for t in targets:
            if isinstance(t, ast.Subscript) and ast.unparse(t.value) in ("os.environ", "environ"):
                lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _WRITERS:
            owner = ast.unparse(node.func.value)
            if owner in ("os.environ", "environ") or (owner == "os" and node.func.attr in ("putenv", "unsetenv")):
                lines.append(node.lineno)
    return sorted(lines)


def test_the_detector_finds_every_form_of_write() -> None:
    code = "import os\nos.environ['A'] = '1'\nos.environ.setdefault('B', '0')\nos.putenv('C', '1')\n"
    code += "del os.environ['D']\n"
    assert _environment_writes(ast.parse(code)) == [2, 3, 4, 5]
    assert _environment_writes(ast.parse("import os\nx = os.environ.get('A')\n")) == []


def test_library_code_sets_no_environment_variable() -> None:
    found = []
    for path in sorted(_SRC.rglob("*.py")):
        rel = path.relative_to(_SRC)
        if rel.parts[0] in _ENTRY:
            continue
        found += [f"{rel}:{line}" for line in _environment_writes(ast.parse(path.read_text(encoding="utf-8")))]
    assert found == [], f"library modules write the environment: {found}; set it at the CLI entry instead"
