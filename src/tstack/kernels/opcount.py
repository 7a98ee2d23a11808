"""Integer operation counts of each kernel, per row, so that special-function-unit costs derive from the kernels.

Counts are those of the kernels as implemented in this package (one operation per arithmetic node of the data
path, per element or per row): `adds` (add, subtract, negate), `multiplies` (integer multiplies, squares included),
`shifts`, `comparisons` (max, min, clamp bound, sign/abs, rounding decision), `divisions` (integer divisions;
Gemmini's float32 reciprocal multiply is counted in `float_multiplies`), and `passes` over the row (how many times
the row is streamed: a reduction must finish before the pass that uses its result).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tstack.kernels.layernorm import newton_iterations
from tstack.kernels.quant import KernelInputError

KernelName = Literal["gelu", "exp", "softmax", "layernorm", "requantize"]
KERNELS: tuple[KernelName, ...] = ("gelu", "exp", "softmax", "layernorm", "requantize")
VARIANTS = ("ibert", "gemmini")


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

    @property
    def total(self) -> int:
        return self.adds + self.multiplies + self.shifts + self.comparisons + self.divisions + self.float_multiplies

    @property
    def per_element(self) -> float:
        return self.total / self.row_length

    def scaled(self, rows: int) -> OpCounts:
        """The counts of `rows` rows (passes unchanged: rows stream in parallel lanes)."""
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
        )


def op_counts(kernel: str, row_length: int, variant: str = "ibert", *, var_bits: int = 32) -> OpCounts:
    """Operation counts of `kernel` on one row of `row_length` elements (elementwise kernels count `row_length`
    independent elements in one pass). `var_bits` bounds the variance for LayerNorm's Newton square root."""
    n = int(row_length)
    if n < 1:
        raise KernelInputError(f"row_length must be ≥ 1; got {row_length}")
    if variant not in VARIANTS:
        raise KernelInputError(f"unknown variant {variant!r}; use 'ibert' or 'gemmini'")
    if kernel == "gelu":
        # sign, |q|, min(|q|, -b); +b; square; +c; sign multiply; (>>14 in ibert); +one; q * (...)
        shifts = n if variant == "ibert" else 0
        return OpCounts(kernel, variant, n, 3 * n, 3 * n, shifts, 3 * n, 0, 0, 1)
    if kernel == "exp":
        if variant == "ibert":
            # clamp at 30·x0; z = x // x0; r = x - x0·z; (r + b)·r + c; 30 - z; << ; clamp ≥ 0
            return OpCounts(kernel, variant, n, 4 * n, 2 * n, n, 2 * n, n, 0, 1)
        # z = (-x · qln2_inv) >> 16; qp = x + z·qln2; (qp + qb)² + qc; >> z
        return OpCounts(kernel, variant, n, 4 * n, 3 * n, 2 * n, 0, 0, 0, 1)
    if kernel == "softmax":
        exp = op_counts("exp", n, variant)
        if variant == "ibert":
            # pass 1 max; pass 2 subtract max, i-exp, 16-bit requant (multiply, rounding shift), row sum;
            # pass 3 one division per row, multiply and shift per element.
            return OpCounts(
                kernel,
                variant,
                n,
                exp.adds + n + n + (n - 1),
                exp.multiplies + n + n,
                exp.shifts + n + n,
                exp.comparisons + (n - 1) + 2 * n,
                exp.divisions + 1,
                0,
                3,
            )
        # pass 3: float32 reciprocal (one division), float multiply, round and saturate per element.
        return OpCounts(
            kernel,
            variant,
            n,
            exp.adds + n + (n - 1),
            exp.multiplies,
            exp.shifts,
            (n - 1) + 2 * n,
            1,
            n,
            3,
        )
    if kernel == "layernorm":
        it = newton_iterations(var_bits)
        # Newton: per iteration one division, one add, one shift, one comparison (per row).
        sqrt = (it, 0, it, it, it)
        if variant == "ibert":
            # pass 1: Σq, rounding division; pass 2: y = q - mean, >> shift, y², Σ; isqrt; << shift; 2^31 // std;
            # pass 3: y·factor, >> 1, + bias.
            return OpCounts(
                kernel,
                variant,
                n,
                (n - 1) + 1 + n + (n - 1) + sqrt[0] + n,
                n + 0,
                n + 1 + sqrt[2] + n,
                1 + sqrt[3],
                1 + sqrt[4] + 1,
                0,
                3,
            )
        # Gemmini: Σq, /n; Σ(q-mean)², /n; isqrt; per element (q-mean) << frac, rounding division, + bias.
        return OpCounts(
            kernel,
            variant,
            n,
            (n - 1) + n + (n - 1) + sqrt[0] + n + n,
            n,
            n + sqrt[2],
            sqrt[3] + n,
            2 + sqrt[4] + n,
            0,
            3,
        )
    if kernel == "requantize":
        # q·m, rounding shift (shift, remainder, compare), saturate (two compares)
        return OpCounts(kernel, variant, n, 2 * n, n, 2 * n, 3 * n, 0, 0, 1)
    raise KernelInputError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
