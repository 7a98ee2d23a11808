"""Run-time estimates of the commands whose work grows with their input, and the refusal past a limit.

A command counts its work before starting it (matmul instances, distinct shapes per mapper, candidate mappings,
random samples) and multiplies each count by a per-unit rate. The rates are constants **measured** on the 2-core
development machine (`benchmarks/bench_work_estimate.py` measures them again and prints the estimate beside the
measured time; `benchmarks/RESULTS-robustness.md` records a run), so every estimate is a prediction from measured
rates, good to a small factor, not a promise. Past `SLOW_LIMIT_S` the command refuses in one line naming the
estimate and `--allow-slow`; with the flag it runs and shows its progress.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tstack.errors import TstackError
from tstack.mapping.matmul.mappers import MapperName, divisors
from tstack.workload import OpKind, Workload

# The longest a command runs without being asked to: a minute is what a user waits at a prompt without wondering.
SLOW_LIMIT_S = 60.0

# Per-unit rates, seconds, measured on the shared 2-core development machine (benchmarks/bench_work_estimate.py;
# runs there vary 3-4x with the load other processes put on it, so each rate sits between the idle and the loaded
# measurement). `simulate`: each matmul instance (one swept step of one op) is shaped and priced; each distinct
# shape costs its mapper's call once (the engine caches mappings by shape); the exhaustive mapper's call also grows
# with its candidate mappings; CoSA's CP-SAT solve varies most (16 ms to its 10 s limit per shape).
_OP_S = 2.0e-4
_INSTANCE_S = 1.1e-5
_SHAPE_S = {MapperName.GEMMINI: 3.0e-5, MapperName.EXHAUSTIVE: 6.0e-5, MapperName.COSA: 3.0e-2}
_CANDIDATE_S = 8.0e-7
# CoSA on a full-size (unswept) matmul: its CP-SAT solve runs toward its time limit
_COSA_LARGE_S = 6.0
_CONV_S = 1.5e-2  # `map`: one 7-loop exhaustive search of a convolution
# `analyze`: counting is vectorized over a swept op's steps; cost per op instance (every swept step of every op).
_ANALYZE_INSTANCE_S = 4.0e-8
# `mapspace`: per random sample, and per op (its exhaustive best and valid-mapping count), by semantics; the
# semantics other than tstack draw multi-level nests and take the nest rates.
_SAMPLE_S = {"tstack": 6.0e-7, "nest": 3.0e-6}
_MAPSPACE_OP_S = {"tstack": 2.0e-2, "nest": 3.0e-2}
_ORDERS = 6  # loop orders the exhaustive matmul mapper tries per tile choice
# The engine keeps this many mappings (its lru_cache, tstack.simulate.engine). Past it, a long decoder's per-layer
# cycle through its swept shapes evicts each shape before the next layer asks for it again, so every instance
# calls the mapper.
_MAPPING_CACHE_ENTRIES = 65536

_err = Console(stderr=True)

AllowSlowOption = Annotated[
    bool,
    typer.Option(
        "--allow-slow",
        help=f"Run even when the predicted run time is over {SLOW_LIMIT_S:.0f} s (a progress display shows on stderr).",
    ),
]


class SlowWorkError(TstackError):
    """A command whose predicted run time is past the limit, run without `--allow-slow`."""


@dataclass(frozen=True, slots=True)
class WorkEstimate:
    """Predicted seconds of a command's work, and what was counted to predict it."""

    seconds: float
    work: str

    def times(self, count: int, what: str) -> WorkEstimate:
        """The same work done `count` times (designs compared, grid points swept)."""
        return WorkEstimate(self.seconds * count, f"{count:,} {what} x ({self.work})")


def refuse_if_slow(estimate: WorkEstimate, allow_slow: bool, command: str, less: str) -> bool:
    """Raise one line when `estimate` is past the limit and the user did not allow it (`less`: how to ask for less
    work); True when the run is slow (allowed), so that the command shows progress."""
    if estimate.seconds <= SLOW_LIMIT_S:
        return False
    if not allow_slow:
        raise SlowWorkError(
            f"{command} would take about {_duration(estimate.seconds)} (predicted from measured rates: "
            f"{estimate.work}), over the {SLOW_LIMIT_S:.0f} s limit; add --allow-slow to run it anyway, or ask for "
            f"less ({less})"
        )
    return True


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h"


@contextmanager
def predicted_progress(estimate: WorkEstimate, description: str, show: bool) -> Iterator[None]:
    """A spinner with the elapsed time beside the predicted total, on stderr, for work that reports no steps; gone
    when done (transient), and off when stderr is not a terminal (where rich would leave an empty line), so that an
    error stays the only line on stderr."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"{description} (predicted about {_duration(estimate.seconds)})"),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
        disable=not (show and _err.is_terminal),
    )
    with progress:
        progress.add_task(description, total=None)
        yield


def _divisor_sum(start: int, stop: int) -> float:
    """Σ d(t) for t in start..stop (d: the number of divisors), by Dirichlet's D(x) ≈ x ln x + (2γ - 1) x."""

    def dirichlet(x: int) -> float:
        return 0.0 if x < 1 else x * math.log(x) + (2 * 0.5772156649 - 1) * x

    return max(float(stop - start + 1), dirichlet(stop) - dirichlet(start - 1))


def _matmul_dims(dims: dict[str, int], kind: OpKind) -> tuple[int, int, int]:
    if kind is OpKind.CONV:  # im2col, as the engine maps it
        return dims["N"] * dims["P"] * dims["Q"], dims["K"], dims["C"] * dims["R"] * dims["S"]
    return dims["M"], dims["N"], dims["K"]


@dataclass(frozen=True, slots=True)
class MatmulWork:
    """What simulating a workload's matmuls costs: instances priced, distinct shapes mapped, and the exhaustive
    mapper's candidate mappings over those shapes."""

    ops: int
    instances: int
    shapes: int
    candidates: float
    unswept_shapes: int

    @property
    def mapper_calls(self) -> int:
        """Calls to the mapper: one per distinct shape while the engine's cache holds them all, else one per
        instance."""
        return self.shapes if self.shapes <= _MAPPING_CACHE_ENTRIES else self.instances


def matmul_work(workload: Workload, *, swept: bool = True) -> MatmulWork:
    """Count the matmul work of `workload` without doing it (`swept=False`: only the ops without a sweep, as `map`
    maps them)."""
    instances = 0
    seen: dict[tuple[object, ...], tuple[int, float]] = {}
    for op in workload.ops:
        if op.kind not in (OpKind.MATMUL, OpKind.CONV) or (op.sweep is not None and not swept):
            continue
        steps = 1 if op.sweep is None else op.sweep.stop - op.sweep.start + 1
        instances += steps
        key = (op.kind, op.dims, op.repeat, op.sweep)
        if key in seen:
            continue
        dims = dict(op.dims)
        sizes = [float(len(divisors(v))) for v in _matmul_dims(dims, op.kind)]
        if op.sweep is not None and op.sweep.dim in ("M", "N", "K"):
            sizes["MNK".index(op.sweep.dim)] = _divisor_sum(op.sweep.start, op.sweep.stop)
        seen[key] = (steps, _ORDERS * math.prod(sizes))
    return MatmulWork(
        len(workload.ops),
        instances,
        sum(s for s, _ in seen.values()),
        sum(c for _, c in seen.values()),
        sum(1 for key in seen if key[3] is None),
    )


def named_workload(
    model: str, hw: str, seq: int | None, phase: str | None, *, batch: int = 1, fused: bool = False
) -> Workload | None:
    """The workload that a command's model, --hw, --seq and --phase name (the hardware only checked), for its
    estimate before the run; None when one of them is bad: the run itself then says what is wrong, in its own words."""
    from tstack.api import _hardware, _parse_phase, _spec
    from tstack.workload import build_workload

    try:
        spec = _spec(model)
        _hardware(hw)
        return build_workload(spec, seq, phase=_parse_phase(phase, spec), batch=batch, fused=fused)
    except TstackError:
        return None


def simulate_estimate(workload: Workload, mapper: MapperName) -> WorkEstimate:
    """Predicted seconds of `simulate_workload(workload, ..., mapper)`."""
    w = matmul_work(workload)
    calls = w.mapper_calls
    seconds = w.ops * _OP_S + w.instances * _INSTANCE_S + calls * _SHAPE_S.get(mapper, _SHAPE_S[MapperName.COSA])
    detail = f"{w.instances:,} matmul instances, {calls:,} {mapper.value} mapper calls"
    if calls > w.shapes:
        detail += f" ({w.shapes:,} distinct shapes, more than the mapping cache holds)"
    if mapper is MapperName.COSA:
        seconds += w.unswept_shapes * _COSA_LARGE_S
        detail += f" ({w.unswept_shapes:,} of them full-size CP-SAT solves)"
    if mapper is MapperName.EXHAUSTIVE:
        candidates = w.candidates * calls / w.shapes
        seconds += candidates * _CANDIDATE_S
        detail += f", {candidates:,.0f} candidate mappings"
    return WorkEstimate(seconds, detail)


def map_estimate(workload: Workload) -> WorkEstimate:
    """Predicted seconds of `map_model`: the exhaustive and heuristic mappers on each distinct unswept matmul, and
    a 7-loop search of each convolution."""
    w = matmul_work(workload, swept=False)
    convs = len({(op.dims, op.repeat) for op in workload.ops if op.kind is OpKind.CONV})
    seconds = w.shapes * (_SHAPE_S[MapperName.EXHAUSTIVE] + _SHAPE_S[MapperName.GEMMINI])
    seconds += w.candidates * _CANDIDATE_S + convs * _CONV_S
    return WorkEstimate(seconds, f"{w.shapes:,} distinct matmuls, {w.candidates:,.0f} candidate mappings")


def analyze_estimate(workloads: Sequence[Workload]) -> WorkEstimate:
    """Predicted seconds of counting `workloads` (every swept step of every op is one instance)."""
    instances = sum(op.instances // op.repeat for w in workloads for op in w.ops)
    return WorkEstimate(instances * _ANALYZE_INSTANCE_S, f"{instances:,} op instances to count")


def mapspace_estimate(ops: int, samples: int, semantics: str) -> WorkEstimate:
    """Predicted seconds of characterizing `ops` ops with `samples` random mappings each."""
    kind = "tstack" if semantics == "tstack" else "nest"
    seconds = ops * (_MAPSPACE_OP_S[kind] + samples * _SAMPLE_S[kind])
    return WorkEstimate(seconds, f"{ops} ops x {samples:,} random {'nests' if kind == 'nest' else 'mappings'}")
