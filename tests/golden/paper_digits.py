"""Comparing a computed value with a number as the paper prints it.

The paper's last digits are sometimes rounded (half to even, as printf does: 63.625 -> 63.62) and sometimes
truncated (46.54% -> 46); a value matches a printed cell if either gives the printed text.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal


def rounded(value: float, template: str, rounding: str = ROUND_HALF_EVEN) -> str:
    """`value` at the number of decimals `template` has."""
    places = len(template.split(".")[1]) if "." in template else 0
    quantum = Decimal(1).scaleb(-places)
    return str(Decimal(repr(value)).quantize(quantum, rounding=rounding))


def matches(value: float, text: str) -> bool:
    return text in (rounded(value, text), rounded(value, text, ROUND_DOWN))
