"""Fuzzing the command line's argument parsing (issue 19): random argv lists built from every cheap command's real
options, with valid option names and random or edge values, unknown options, options missing their value,
repeated flags and stray positionals, run in-process. Whatever the argv: the exit code is 0 or 2, no traceback,
at most one stderr line on exit 2, and nothing is written outside the (temporary) working folder.

Examples: `TSTACK_FUZZ_EXAMPLES` (default 200, about 15 s here). The commands that train or measure (`profile`,
`calibrate`, `study`, `nas train`, `nas search`, `quantize`, `kernels`, `codesign`) are left out: their cost is
their purpose. The time limit of `tstack.commands.budget` is lowered to half a second so that a valid argv asking
for minutes is refused (exit 2, one line) instead of run, and `--allow-slow` is not drawn.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import typer.main
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.core import TyperGroup
from typer.testing import CliRunner

from tstack.cli import app
from tstack.commands import budget

EXAMPLES = int(os.environ.get("TSTACK_FUZZ_EXAMPLES", "200"))
_SKIPPED = {"profile", "calibrate", "study", "nas train", "nas search", "quantize", "kernels", "codesign"}
_NEVER_DRAWN = {"--allow-slow", "--help"}

runner = CliRunner()


def _commands() -> dict[str, typer.main.click.Command]:  # type: ignore[name-defined]
    """Every leaf command by its path (`nas report`), less the skipped ones."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    found = {}
    for name, cmd in group.commands.items():
        if isinstance(cmd, TyperGroup):
            found.update({f"{name} {sub}": c for sub, c in cmd.commands.items()})
        else:
            found[name] = cmd
    return {k: v for k, v in found.items() if k not in _SKIPPED}


COMMANDS = _commands()

# Valid values of every kind the options take, edge values, and junk; a value is drawn whatever the option's type,
# so that each option also meets values of the wrong type.
_VALUES = [
    *("0", "-1", "1", "2", "7", "64", "128", str(2**31), str(2**63), str(10**12), "1e5", "12.5", "NaN", "inf"),
    *("", " ", ",", "a,,b", "ü", "--json", "-", "x" * 300),
    *("bert-base", "gpt2", "llama-2-7b", "resnet50", "vit-base", "gemmini-baseline", "gemmini-ibert", "a100"),
    *("encoder", "generate", "prefill", "decode", "gemmini", "exhaustive", "cosa", "random", "paper-2023"),
    *("tstack", "nest", "nest-free", "timeloop", "timeloop-ids", "uniform", "dosa-random", "bert-base-ffn"),
    *("accumulator=64K,128K", "scratchpad=1M", "pe=8", "pe=8,16", "64K", "128,256", "layer0.ffn.up", "16,32"),
    *("out", "out/sub", "x.yaml", "x.journal", ".", "/proc/tstack-x", "memory", "sqlite:///x.db"),
]
_value = st.one_of(st.sampled_from(_VALUES), st.text(max_size=8))
# Values each option accepts, drawn half of the time, so that many argvs get past parsing and run.
_VALID = {
    "--hw": ["gemmini-baseline", "gemmini-ibert", "gemmini-baseline,gemmini-ibert"],
    "--seq": ["16", "64", "128", "16,32"],
    "--phase": ["encoder", "generate", "prefill", "decode"],
    "--batch": ["1", "2"],
    "--bits": ["8", "4"],
    "--mapper": ["gemmini", "exhaustive"],
    "--samples": ["10", "50"],
    "--seed": ["0", "1"],
    "--ops": ["bert-base-ffn", "bert-base-mha,bert-base-ffn"],
    "--semantics": ["tstack", "nest", "timeloop"],
    "--sampler": ["uniform", "timeloop-ids"],
    "--set": ["accumulator=64K,128K", "pe=8,16", "scratchpad=128K"],
    "--convention": ["default", "paper-2023"],
    "--device": ["a100", "h100"],
    "--accumulator": ["128K", "64K,256K"],
    "--scratchpad": ["256K"],
    "--op": ["layer0.ffn.up", "layer0.attn.qk"],
    "--plot": ["out", "plots/sub"],
    "--export": ["out", "best.yaml"],
    "--storage": ["x.journal", "memory"],
    "argument": ["bert-base", "gpt2", "vit-base", "resnet50"],
}


def _value_for(name: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_VALID.get(name, _VALUES)), _value)


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    path = draw(st.sampled_from(sorted(COMMANDS)))
    cmd = COMMANDS[path]
    options = [p for p in cmd.params if p.param_type_name == "option" and not set(p.opts) & _NEVER_DRAWN]
    argv = path.split()
    for _ in range(sum(1 for p in cmd.params if p.param_type_name == "argument" and p.required)):
        argv.append(draw(_value_for("argument")))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["option", "option", "option", "flag-again", "unknown", "stray"]))
        if kind == "unknown":
            argv.append(draw(st.sampled_from(["--bogus", "-x", "--jso", "--seq=", "--", "---"])))
            continue
        if kind == "stray":
            argv.append(draw(_value_for("argument")))
            continue
        if not options:
            continue
        opt = draw(st.sampled_from(options))
        name = draw(st.sampled_from(list(opt.opts)))
        if getattr(opt, "is_flag", False):
            argv += [name] * (2 if kind == "flag-again" else 1)
        else:
            argv += [name, draw(_value_for(name))]
    if options and draw(st.integers(0, 9)) == 0:  # an option at the very end, missing its value
        argv.append(draw(st.sampled_from([n for o in options for n in o.opts])))
    return argv


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path below `folder` with its size and modification time."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                st_ = (Path(root) / name).stat()
            except OSError:
                continue
            seen[str(Path(root) / name)] = (st_.st_size, st_.st_mtime_ns)
    return seen


@contextmanager
def _in_fresh_folder(outside: Path) -> Iterator[Path]:
    old = Path.cwd()
    with tempfile.TemporaryDirectory(dir=outside) as cwd:
        os.chdir(cwd)
        try:
            yield Path(cwd)
        finally:
            os.chdir(old)


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-outside")


def test_every_fuzzed_command_is_reached() -> None:
    assert {"analyze", "simulate", "compare", "sweep", "map", "mapspace", "fusion", "nas report"} <= set(COMMANDS)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(argv=argvs())
def test_any_argv_exits_0_or_2_with_one_line_and_writes_only_in_its_folder(
    argv: list[str], outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budget, "SLOW_LIMIT_S", 0.5)
    repo = Path(__file__).resolve().parents[2]
    before_outside, before_repo = _snapshot(outside), sorted(os.listdir(repo))
    with _in_fresh_folder(outside) as cwd:
        result = runner.invoke(app, argv)
        inside = str(cwd)
        after = {k: v for k, v in _snapshot(outside).items() if k != inside and not k.startswith(inside + os.sep)}
    event(f"exit {result.exit_code}")  # `--hypothesis-show-statistics` shows how many parsed and ran
    event(f"command {' '.join(argv[:2]) if argv[0] == 'nas' else argv[0]}")
    assert result.exit_code in (0, 2), (argv, result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, repr(result.exception))
    assert "Traceback" not in result.output, (argv, result.output)
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) <= 1, (argv, result.stderr)
        assert all(line.startswith("error: ") for line in lines), (argv, result.stderr)
    assert after == before_outside, (argv, set(after) ^ set(before_outside))
    assert sorted(os.listdir(repo)) == before_repo, argv
