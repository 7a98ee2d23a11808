"""What every command shares: parsing comma-separated options and printing JSON documents."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from tstack.errors import TstackError

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
