"""Integer operation counts of each kernel, per row, so that special-function-unit costs derive from the kernels.

Counts are those of the kernels' data paths (one operation per arithmetic node, per element or per row, as the
integer algorithm is written — not the instructions of tstack's numpy evaluation, which fuses and reorders them):
`adds` (add, subtract, negate), `multiplies` (integer multiplies, squares included), `shifts`, `comparisons` (max,
min, clamp bound, sign/abs, rounding decision), `divisions` (integer divisions; Gemmini's float32 reciprocal multiply
is counted in `float_multiplies`), and `passes` over the row (how many times the row is streamed: a reduction must
finish before the pass that uses its result).

Each kernel is a sequence of passes; `pass_ops` gives each pass's operations per element (per-row operations, such
as a division or the Newton square root between two passes, spread over the row and charged to the pass that
follows them), and `reductions` how many leading passes end in a row reduction (max, Σ, Σ²) that a later pass
consumes. The last pass writes the output. `tstack.simulate.nonlinear` costs special-function units from these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tstack.kernels.layernorm import newton_iterations
from tstack.kernels.quant import KernelInputError

KernelName = Literal["gelu", "exp", "softmax", "layernorm", "requantize"]
KERNELS: tuple[KernelName, ...] = ("gelu", "exp", "softmax", "layernorm", "requantize")
VARIANTS = ("ibert", "gemmini")
_KINDS = ("adds", "multiplies", "shifts", "comparisons", "divisions", "float_multiplies")


@dataclass(frozen=True, slots=True)
class OpCounts:
    """Integer operations of one kernel on one row of `row_length` elements."""

    kernel: str
    variant: str
    row_length: int
    adds: int
    multiplies: int
    shifts: int
    comparisons: int
    divisions: int
    float_multiplies: int
    passes: int
    #: operations per element in each pass (per-row operations spread over the row); sums to total / row_length
    pass_ops: tuple[float, ...] = field(default=())
    #: leading passes that end in a row reduction a later pass consumes (a normalization unit's work)
    reductions: int = 0

    @property
    def total(self) -> int:
        return self.adds + self.multiplies + self.shifts + self.comparisons + self.divisions + self.float_multiplies

    @property
    def per_element(self) -> float:
        return self.total / self.row_length

    def scaled(self, rows: int) -> OpCounts:
        """The counts of `rows` rows (passes and per-element figures unchanged: rows stream in parallel lanes)."""
        return OpCounts(
            self.kernel,
            self.variant,
            self.row_length,
            self.adds * rows,
            self.multiplies * rows,
            self.shifts * rows,
            self.comparisons * rows,
            self.divisions * rows,
            self.float_multiplies * rows,
            self.passes,
            self.pass_ops,
            self.reductions,
        )


@dataclass(frozen=True, slots=True)
class _Pass:
    """One pass: operations per element, and per row (charged to this pass)."""

    per_element: dict[str, int]
    per_row: dict[str, int] = field(default_factory=dict)
    reduction: bool = False


def _count(kernel: str, variant: str, n: int, passes: list[_Pass]) -> OpCounts:
    totals = dict.fromkeys(_KINDS, 0)
    for p in passes:
        for kind in _KINDS:
            totals[kind] += p.per_element.get(kind, 0) * n + p.per_row.get(kind, 0)
    pass_ops = tuple(sum(p.per_element.values()) + sum(p.per_row.values()) / n for p in passes)
    leading = next((i for i, p in enumerate(passes) if not p.reduction), len(passes))
    return OpCounts(
        kernel,
        variant,
        n,
        adds=totals["adds"],
        multiplies=totals["multiplies"],
        shifts=totals["shifts"],
        comparisons=totals["comparisons"],
        divisions=totals["divisions"],
        float_multiplies=totals["float_multiplies"],
        passes=len(passes),
        pass_ops=pass_ops,
        reductions=leading,
    )


def _exp_ops(variant: str) -> dict[str, int]:
    if variant == "ibert":
        # clamp at 30·x0; z = x // x0; r = x - x0·z; (r + b)·r + c; 30 - z; << ; clamp ≥ 0
        return {"adds": 4, "multiplies": 2, "shifts": 1, "comparisons": 2, "divisions": 1}
    # z = (-x · qln2_inv) >> 16; qp = x + z·qln2; (qp + qb)² + qc; >> z
    return {"adds": 4, "multiplies": 3, "shifts": 2}


def _plus(*parts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out.get(k, 0) + v
    return out


def op_counts(kernel: str, row_length: int, variant: str = "ibert", *, var_bits: int = 32) -> OpCounts:
    """Operation counts of `kernel` on one row of `row_length` elements (elementwise kernels count `row_length`
    independent elements in one pass). `var_bits` bounds the variance for LayerNorm's Newton square root."""
    n = int(row_length)
    if n < 1:
        raise KernelInputError(f"row_length must be ≥ 1; got {row_length}")
    if variant not in VARIANTS:
        raise KernelInputError(f"unknown variant {variant!r}; use 'ibert' or 'gemmini'")
    # A row reduction over n elements: n - 1 operations, i.e. one per element less one per row.
    reduce_add = ({"adds": 1}, {"adds": -1})
    reduce_max = ({"comparisons": 1}, {"comparisons": -1})
    if kernel == "gelu":
        # sign, |q|, min(|q|, -b); +b; square; +c; sign multiply; (>>14 in ibert); +one; q * (...)
        shifts = 1 if variant == "ibert" else 0
        ops = {"adds": 3, "multiplies": 3, "shifts": shifts, "comparisons": 3}
        return _count(kernel, variant, n, [_Pass(ops)])
    if kernel == "exp":
        return _count(kernel, variant, n, [_Pass(_exp_ops(variant))])
    if kernel == "requantize":
        # q·m, rounding shift (shift, remainder, compare), saturate (two compares)
        return _count(kernel, variant, n, [_Pass({"adds": 2, "multiplies": 1, "shifts": 2, "comparisons": 3})])
    if kernel == "softmax":
        row_max = _Pass(reduce_max[0], reduce_max[1], reduction=True)
        if variant == "ibert":
            # pass 2: subtract the max, i-exp, 16-bit requantization (multiply, rounding add and shift, clamp to
            # [0, 2^15 - 1]), row sum; pass 3: ⌊2^32 / Σ⌋ once per row, then a multiply and a shift per element.
            requant = {"adds": 1, "multiplies": 1, "shifts": 1, "comparisons": 2}
            exp_sum = _Pass(_plus({"adds": 1}, _exp_ops(variant), requant, reduce_add[0]), reduce_add[1], True)
            apply = _Pass({"multiplies": 1, "shifts": 1}, {"divisions": 1})
        else:
            # pass 3: the sum's float32 reciprocal (one division per row), a float multiply, round and saturate.
            exp_sum = _Pass(_plus({"adds": 1}, _exp_ops(variant), reduce_add[0]), reduce_add[1], True)
            apply = _Pass({"float_multiplies": 1, "comparisons": 2}, {"divisions": 1})
        return _count(kernel, variant, n, [row_max, exp_sum, apply])
    if kernel == "layernorm":
        it = newton_iterations(var_bits)
        # Newton's isqrt between passes 2 and 3: per iteration a division, an add, a shift, a comparison.
        newton = {"divisions": it, "adds": it, "shifts": it, "comparisons": it}
        if variant == "ibert":
            # pass 1: Σq (+ the mean's rounding division); pass 2: y = q - mean, y >> shift, y², Σ;
            # per row: isqrt, std << shift, 2^31 // std; pass 3: y · factor, >> 1, + bias.
            total = _Pass(reduce_add[0], _plus(reduce_add[1], {"adds": 1, "divisions": 1, "comparisons": 1}), True)
            squares = _Pass(_plus({"adds": 1, "shifts": 1, "multiplies": 1}, reduce_add[0]), reduce_add[1], True)
            apply = _Pass({"multiplies": 1, "shifts": 1, "adds": 1}, _plus(newton, {"shifts": 1, "divisions": 1}))
        else:
            # Gemmini: Σq, /n; Σ(q - mean)², /n; isqrt; per element (q - mean) << frac, rounding division, + bias.
            total = _Pass(reduce_add[0], _plus(reduce_add[1], {"divisions": 1}), True)
            squares = _Pass({"adds": 2, "multiplies": 1}, _plus(reduce_add[1], {"divisions": 1}), True)
            apply = _Pass({"adds": 2, "shifts": 1, "divisions": 1, "comparisons": 1}, newton)
        return _count(kernel, variant, n, [total, squares, apply])
    raise KernelInputError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
