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


# ---- the layer contract: the core never imports the boundary or the layers above it, and reads no text files ----

CORE = ("workload", "profile", "hardware", "mapping", "simulate", "kernels", "nas", "codesign")
FORBIDDEN = ("tstack.spec", "tstack.report", "tstack.commands", "tstack.cli", "tstack.api", "tstack.studies")
# calls that parse or open a text file; `tstack.fileio`'s readers are the same thing behind a name
READERS = {
    "yaml.safe_load",
    "yaml.load",
    "yaml.full_load",
    "json.load",
    "json.loads",
    "open",
    "read_text",
    "read_yaml",
    "read_json",
    "parse_yaml",
    "parse_json",
}
# (module, call) pairs that stay, each with its reason: data the core itself works on, not a description to parse
KEPT_READERS = {
    # the text corpora perplexity and calibration are measured on (data, like weights), not a spec
    ("kernels/corpus.py", "read_text"),
    ("nas/data.py", "read_text"),
    # the machine's boot id, to tell a stale lock from a live one after a reboot (a system fact, not a file format)
    ("nas/journal.py", "read_text"),
    ("nas/search_loop.py", "read_text"),
    # the price table's own disk cache (written by `build_price_table` itself, keyed by a digest; a damaged entry is
    # rebuilt): the core's scratch state, not user input
    ("nas/pricing.py", "json.loads"),
    ("nas/pricing.py", "read_text"),
    # the statistics file the Timeloop binary writes in the run's own temporary folder (a tool's output)
    ("mapping/timeloop/run.py", "read_text"),
}
# not done yet (issue #17), each to leave this list when it moves (empty: the rule holds with the kept readers only)
PENDING: set[tuple[str, str]] = set()


def _dotted(node: ast.expr) -> str:
    """`yaml.safe_load` for `yaml.safe_load`, `read_text` for `path.read_text` or `p.joinpath(x).read_text`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in ("yaml", "json"):
            return f"{node.value.id}.{node.attr}"
        return node.attr
    return ""


def layer_violations(source: str) -> list[tuple[int, str]]:
    """(line, what) of every import of a forbidden package (at module level or inside a function) and every call
    that reads or parses a text file, in `source`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            # tstack imports absolutely everywhere; a relative import (`from ..spec import x`) is not resolved here
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                module = node.module or ""
                names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            bad = [n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
            if bad:
                found.append((node.lineno, f"imports {bad[0]}"))
        if isinstance(node, ast.Call) and (call := _dotted(node.func)) in READERS:
            found.append((node.lineno, call))
    return found


def core_findings() -> list[tuple[str, int, str]]:
    """(module, line, what) of every violation in the core packages, exceptions included."""
    return [
        (path.relative_to(SRC).as_posix(), line, what)
        for package in CORE
        for path in sorted((SRC / package).rglob("*.py"))
        for line, what in layer_violations(path.read_text(encoding="utf-8"))
    ]


def test_the_core_never_imports_the_boundary_or_reads_text_files() -> None:
    offenders = [
        f"{rel}:{line}: {what}" for rel, line, what in core_findings() if (rel, what) not in KEPT_READERS | PENDING
    ]
    assert not offenders, (
        "the core takes values: resolve presets and read files in tstack.spec, and pass what they give:\n"
        + "\n".join(offenders)
    )


def test_every_exception_is_still_needed() -> None:
    """An exception whose module no longer does the thing leaves the list, so the list stays the truth."""
    found = {(rel, what) for rel, _, what in core_findings()}
    stale = sorted((KEPT_READERS | PENDING) - found)
    assert not stale, f"no longer found, remove from KEPT_READERS/PENDING: {stale}"


def test_the_layer_rule_catches_a_planted_offender() -> None:
    """The check itself: a lazy import of the boundary, a report import, a file read and a YAML parse are caught;
    core-to-core imports and writing are not."""
    planted = (
        "import yaml\n"
        "from tstack.hardware.types import Hardware\n"
        "from tstack import report\n"
        "def f(path):\n"
        "    from tstack.spec.hardware import load_hardware\n"
        "    import tstack.cli\n"
        "    data = yaml.safe_load(path.read_text())\n"
        "    with open(path) as fh:\n"
        "        fh.write(yaml.safe_dump(data))\n"
        "    return json.loads(data)\n"
    )
    assert sorted(layer_violations(planted)) == [
        (3, "imports tstack.report"),
        (5, "imports tstack.spec.hardware"),
        (6, "imports tstack.cli"),
        (7, "read_text"),
        (7, "yaml.safe_load"),
        (8, "open"),
        (10, "json.loads"),
    ]


def test_the_scan_reaches_every_core_package() -> None:
    """Every core package exists and holds modules the scan reads (a renamed package is not silently skipped)."""
    scanned = {p.relative_to(SRC).parts[0] for package in CORE for p in (SRC / package).rglob("*.py")}
    assert scanned == set(CORE)


# ---- the renderers read result types where they live, never through the API facade ----


def imported_names(source: str) -> list[tuple[int, str]]:
    """(line, dotted name) of everything `source` imports: `import a.b` gives a.b, `from a import b` gives a and a.b
    (so `from tstack import api` is caught as tstack.api); at module level or inside a function."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found += [(node.lineno, module), *((node.lineno, f"{module}.{alias.name}") for alias in node.names)]
    return found


def report_api_imports() -> list[str]:
    """`module:line` of every import of `tstack.api` in `tstack.report`."""
    return [
        f"{path.relative_to(SRC).as_posix()}:{line}: imports {name}"
        for path in sorted((SRC / "report").rglob("*.py"))
        for line, name in imported_names(path.read_text(encoding="utf-8"))
        if name == "tstack.api" or name.startswith("tstack.api.")
    ]


def test_the_report_never_imports_the_api() -> None:
    """Renderers take results (`tstack.workload`, `tstack.mapping`, `tstack.simulate` types) where they live, so the
    API may use the report and the report never reaches back through the facade."""
    offenders = report_api_imports()
    assert not offenders, "import result types from their own package, not tstack.api:\n" + "\n".join(offenders)


def test_the_report_rule_catches_a_planted_offender() -> None:
    planted = "from tstack import api, report\ndef f():\n    from tstack.api import Analysis\n    import tstack.apis\n"
    assert [n for _, n in imported_names(planted) if n == "tstack.api" or n.startswith("tstack.api.")] == [
        "tstack.api",  # from tstack import api
        "tstack.api",  # from tstack.api import Analysis
        "tstack.api.Analysis",
    ]


# ---- the declared order: every package imports only the layers below its own ----

# lowest first; packages in one layer never import each other. A new package must be placed here to pass.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "units"),
    ("fileio",),
    ("workload",),
    ("profile", "kernels"),
    ("hardware",),  # its sizing of the nonlinear units counts the kernels' integer ops
    ("mapping",),
    ("simulate",),
    ("nas",),
    ("codesign",),
    ("report", "spec"),  # renderers and the file boundary: both take values from the core, neither calls the other
    ("api",),
    ("studies",),
    ("commands",),
    ("cli", "__init__"),
    ("__main__",),
)
# inside `tstack.mapping`, the same rule over its subpackages and top-level modules
MAPPING_LAYERS: tuple[tuple[str, ...], ...] = (
    ("matmul",),
    ("conv",),
    ("nest",),
    ("timeloop",),
    ("mapspace", "op_mapping"),
    ("__init__",),
)


def _rank(layers: tuple[tuple[str, ...], ...]) -> dict[str, int]:
    return {name: i for i, layer in enumerate(layers) for name in layer}


def order_violations(source: str, own: str, layers: tuple[tuple[str, ...], ...], prefix: str) -> list[tuple[int, str]]:
    """(line, what) of every import in `source` (a module of unit `own`) of a unit under `prefix` that is not in a
    lower layer than `own`'s. Units are the first dotted part after `prefix` (`tstack.` or `tstack.mapping.`)."""
    rank = _rank(layers)
    found: dict[tuple[int, str], str] = {}  # one finding per (line, unit): `from a.b import c` also names a.b.c
    for line, name in imported_names(source):
        if not name.startswith(prefix):
            continue
        target = name.removeprefix(prefix).split(".")[0]
        # a name that is no unit is an attribute of the package root (`from tstack import __version__`)
        if target in rank and target != own and rank[target] >= rank[own]:
            found.setdefault((line, target), f"{own} imports {name}")
    return [(line, what) for (line, _), what in found.items()]


def _unit(path: Path, root: Path) -> str:
    """`mapping` for mapping/nest/l2.py, `cli` for cli.py (the first part under `root`, without a suffix)."""
    return path.relative_to(root).parts[0].removesuffix(".py")


def test_every_package_sits_in_the_declared_order() -> None:
    units = {_unit(p, SRC) for p in SRC.rglob("*.py") if "presets" not in p.parts}
    assert units == set(_rank(LAYERS)), f"place new packages in LAYERS: {sorted(units ^ set(_rank(LAYERS)))}"
    mapping = {_unit(p, SRC / "mapping") for p in (SRC / "mapping").rglob("*.py")}
    assert mapping == set(_rank(MAPPING_LAYERS)), sorted(mapping ^ set(_rank(MAPPING_LAYERS)))


def test_no_import_runs_against_the_declared_order() -> None:
    offenders = [
        f"{path.relative_to(SRC).as_posix()}:{line}: {what}"
        for path in sorted(SRC.rglob("*.py"))
        if "presets" not in path.parts
        for line, what in order_violations(path.read_text(encoding="utf-8"), _unit(path, SRC), LAYERS, "tstack.")
    ]
    offenders += [
        f"{path.relative_to(SRC).as_posix()}:{line}: {what}"
        for path in sorted((SRC / "mapping").rglob("*.py"))
        for line, what in order_violations(
            path.read_text(encoding="utf-8"), _unit(path, SRC / "mapping"), MAPPING_LAYERS, "tstack.mapping."
        )
    ]
    assert not offenders, "an import runs up the layers (tests/test_architecture.py LAYERS):\n" + "\n".join(offenders)


def test_the_order_rule_catches_a_planted_offender() -> None:
    """The check itself: a lazy upward import and a sideways one (same layer) are caught; downward ones are not."""
    planted = (
        "from tstack.hardware.types import Hardware\n"
        "from tstack import errors\n"
        "def f():\n"
        "    from tstack.simulate.engine import simulate_workload\n"
        "    from tstack import kernels\n"
    )
    assert order_violations(planted, "mapping", LAYERS, "tstack.") == [(4, "mapping imports tstack.simulate.engine")]
    assert order_violations(planted, "profile", LAYERS, "tstack.") == [
        (1, "profile imports tstack.hardware.types"),
        (4, "profile imports tstack.simulate.engine"),
        (5, "profile imports tstack.kernels"),
    ]
    nest_up = "from tstack.mapping.timeloop.run import run_model\nfrom tstack.mapping.matmul import cost\n"
    assert order_violations(nest_up, "nest", MAPPING_LAYERS, "tstack.mapping.") == [
        (1, "nest imports tstack.mapping.timeloop.run")
    ]
