"""What every command shares: parsing comma-separated options and printing JSON documents."""

from __future__ import annotations

import json
import sys
from typing import Any

from tstack.errors import TstackError


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


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
