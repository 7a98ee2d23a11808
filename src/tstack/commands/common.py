"""What every command shares: parsing comma-separated options, output path options, the common option types and
declarations (the model, `--hw`, `--seq`, `--phase`, `--json`, output paths) and printing JSON documents."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tstack.errors import TstackError
from tstack.fileio import OutputError

# Random draws per op: the paper's mapspace study draws 100,000; beyond 10^8 the samples alone outgrow memory.
MAX_SAMPLES = 10**8
# numpy's generators take seeds in [0, 2^128); seeds past 2^63 are not a realistic choice, only a typo.
MAX_SEED = 2**63 - 1


def check_seed(seed: int, option: str = "--seed") -> int:
    """`seed` if numpy can seed a generator with it, else one line saying which seeds are allowed."""
    if not 0 <= seed <= MAX_SEED:
        raise TstackError(f"{option} must be a non-negative integer below 2^63, got {seed}")
    return seed


def json_safe(doc: Any) -> Any:
    """`doc` with every non-finite float (NaN, ±Infinity, which JSON does not have) as null; strings untouched."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: json_safe(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [json_safe(v) for v in doc]
    return doc


def emit_json(doc: Any) -> None:
    """Print `doc` as strict JSON (RFC 8259): a non-finite number prints as null, never as a bare NaN/Infinity."""
    sys.stdout.write(json.dumps(json_safe(doc), indent=2, allow_nan=False) + "\n")


def parse_names(text: str | None, option: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`a,b,c` as a tuple; `default` when the option was not given."""
    if text is None:
        return default
    items = tuple(p.strip() for p in text.split(",") if p.strip())
    if not items:
        example = ",".join(default) or "a,b"
        raise TstackError(f"--{option} expects a comma-separated list such as {example}; got {text!r}")
    return items


def parse_ints(text: str | None, option: str, example: str) -> list[int] | None:
    """`128,512` as integers; None when the option was not given."""
    if text is None:
        return None
    values = []
    for part in text.split(","):
        try:
            values.append(int(part.strip()))
        except ValueError:
            raise TstackError(
                f"--{option} expects comma-separated integers such as {example}; got {part.strip()!r}"
            ) from None
    return values


def output_path(option: str, what: str = "folder") -> Callable[[str | Path], Path]:
    """A Typer parser for an output path option: an empty value (`--plot ''`) would silently mean the current folder,
    so it is refused in one line; anything else is checked where it is used (`tstack.fileio.output_dir`)."""

    def parse(value: str | Path) -> Path:
        if isinstance(value, str) and not value.strip():
            raise OutputError(
                f"{option} is empty, which would mean the current folder; give a {what} name "
                f"({'`.` for the current folder' if what == 'folder' else 'e.g. out.yaml'})"
            )
        return Path(value)

    return parse


def path_option(option: str, help_text: str, what: str = "folder") -> Any:
    """The Typer option of an output path (`--plot`, `--out`, `--export`): `<path>` in --help and an empty value
    refused in one line (`output_path`, which names `option` and asks for a `what`: folder or file), declared once so
    that every command's output paths read and fail alike."""
    return typer.Option(parser=output_path(option, what), metavar="<path>", help=help_text)


def json_option(schema: str) -> Any:
    """The Typer option of a command's `--json` flag, whose document carries `schema` (e.g. `tstack.map/1`)."""
    return typer.Option("--json", help=f"Print a {schema} JSON document.")


def split_names(text: str) -> list[str]:
    """`a, b,,c` as `["a", "b", "c"]`: the items of a comma-separated option, blanks dropped."""
    return [p.strip() for p in text.split(",") if p.strip()]


ModelArgument = Annotated[str, typer.Argument(help="Preset name, model YAML or HF config.json.")]
HwOption = Annotated[str, typer.Option("--hw", help="Hardware preset or YAML file (`tstack hardware` lists them).")]
SeqOption = Annotated[int | None, typer.Option(help="Sequence length (default 128; ViT: its patch count).")]
PhaseOption = Annotated[str | None, typer.Option(help="encoder | generate | prefill | decode.")]
