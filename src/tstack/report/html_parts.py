"""Small HTML pieces shared by the study report's sections: escaping, number formats, tables."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence


def esc(x: object) -> str:
    return html.escape(str(x))


def num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    ax = abs(x)
    if ax != 0 and (ax >= 1e6 or ax < 1e-3):
        return f"{x:.{digits}g}"
    return f"{x:,.0f}" if ax >= 1000 else f"{x:.{digits}g}"


def pct(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.2f}%" if 0 < abs(x) < 0.01 else f"{100 * x:.1f}%"  # small shares keep two digits


def diff(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "–"
    return f"{100 * (ours / theirs - 1):+.1f}%"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


__all__ = ["diff", "esc", "num", "pct", "table"]
