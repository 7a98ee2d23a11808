"""Runtime plumbing of the integer kernels: per-thread scratch buffers, the block thread pool and the BLAS limit.

None of this changes a result; it decides where the kernels' temporaries live and how many threads run their
cache-sized blocks. Kept apart from the quantization math (`tstack.kernels.quant`) so that the math stays pure.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError

T = TypeVar("T")

_LOCAL = threading.local()


def scratch(name: str, dtype: npt.DTypeLike, size: int) -> npt.NDArray[Any]:
    """A work buffer of at least `size` elements, kept per thread and reused across calls (first `size` returned).

    Kernels stream cache-sized blocks through a few of these instead of allocating whole-tensor temporaries: on
    this class of machine a fresh multi-megabyte temporary costs more in page faults than the arithmetic done in
    it. A buffer is only valid until the next kernel call on the same thread; it is never returned to a caller.
    """
    pool: dict[tuple[str, str], npt.NDArray[Any]] | None = getattr(_LOCAL, "pool", None)
    if pool is None:
        pool = {}
        _LOCAL.pool = pool
    key = (name, np.dtype(dtype).str)
    buf = pool.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        pool[key] = buf
    return buf[:size]


def constant_scratch(name: str, dtype: npt.DTypeLike, size: int, value: int) -> npt.NDArray[Any]:
    """A per-thread buffer of at least `size` elements all equal to `value` (refilled only when the value or the
    size changes): the array operand that lets np.minimum / np.maximum run their SIMD loops, which numpy does not
    use against a scalar."""
    consts: dict[tuple[str, str], tuple[int, npt.NDArray[Any]]] | None = getattr(_LOCAL, "consts", None)
    if consts is None:
        consts = {}
        _LOCAL.consts = consts
    key = (name, np.dtype(dtype).str)
    held = consts.get(key)
    if held is None or held[0] != value or held[1].size < size:
        buf = np.full(max(size, 0 if held is None else held[1].size), value, dtype=dtype)
        consts[key] = (value, buf)
        return buf[:size]
    return held[1][:size]


@dataclass(slots=True)
class _WorkerPool:
    """The shared executor and the number of workers it was made with (the executor does not say so publicly)."""

    executor: ThreadPoolExecutor
    workers: int


class _Threads:
    """The thread count the kernels split their blocks over, and the pool of `threads - 1` workers that serves it."""

    def __init__(self) -> None:
        self.count = 1
        self.pool: _WorkerPool | None = None

    def set(self, threads: int) -> None:
        if self.pool is not None and threads - 1 > self.pool.workers:
            self.pool.executor.shutdown(wait=True)  # a larger pool replaces it; a smaller count keeps its workers
            self.pool = None
        self.count = threads

    def executor(self) -> ThreadPoolExecutor:
        if self.pool is None:
            workers = self.count - 1
            executor = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="tstack-kernels", initializer=_mark_worker
            )
            self.pool = _WorkerPool(executor, workers)
        return self.pool.executor


_THREADS = _Threads()


def set_num_threads(threads: int) -> None:
    """Threads the kernels split their cache-sized blocks over (default 1). numpy releases the GIL inside each
    array operation, so blocks run in parallel; each thread has its own scratch buffers. Like torch's intra-op
    threads, more threads than idle cores only adds contention; next to a multi-threaded OpenBLAS, whose idle
    threads spin for 2^28 cycles by default, set OPENBLAS_THREAD_TIMEOUT=4 before numpy loads (as
    benchmarks/bench_kernels.py does), or the spinning threads starve these ones."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise TstackError(f"threads must be an integer ≥ 1; got {threads!r}")
    _THREADS.set(threads)


def get_num_threads() -> int:
    """The thread count set by `set_num_threads`."""
    return _THREADS.count


def for_blocks(n: int, step: int, fn: Callable[[int, int], T]) -> list[T]:
    """[fn(start, stop) for consecutive blocks of at most `step` covering range(n)], on `get_num_threads()` threads
    (blocks are shrunk so that every thread gets work). fn must write only its own block of any shared output.

    The calling thread is one of the threads: it runs the first contiguous share of the blocks itself while
    `threads - 1` pool workers run the others (one hand-off per worker and call, not one per block)."""
    # A block that itself calls for_blocks runs its inner loop in place: waiting on the shared pool from one of its
    # own workers could deadlock.
    threads = 1 if getattr(_LOCAL, "in_worker", False) else _THREADS.count
    if threads > 1 and n > 1:
        step = max(1, min(step, -(-n // threads)))
    bounds = [(start, min(start + step, n)) for start in range(0, n, step)]
    if threads == 1 or len(bounds) < 2:
        return [fn(a, b) for a, b in bounds]
    executor = _THREADS.executor()
    k = min(threads, len(bounds))
    shares = [bounds[i * len(bounds) // k : (i + 1) * len(bounds) // k] for i in range(k)]

    def run(share: list[tuple[int, int]]) -> list[T]:
        return [fn(a, b) for a, b in share]

    futures = [executor.submit(run, share) for share in shares[1:]]
    _LOCAL.in_worker = True
    try:
        results = run(shares[0])
    finally:
        _LOCAL.in_worker = False
    for f in futures:
        results.extend(f.result())
    return results


def _mark_worker() -> None:
    _LOCAL.in_worker = True


def blas_threads(threads: int | None) -> contextlib.AbstractContextManager[object]:
    """Limit the BLAS pool for the integer GEMMs (None: leave it). On a shared or loaded machine a multi-threaded
    BLAS pool next to torch's OpenMP pool oversubscribes the cores and can run many times slower; on an idle
    machine all threads are faster."""
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - optional speed-up
        return contextlib.nullcontext()
    limiter: contextlib.AbstractContextManager[object] = threadpool_limits(threads, user_api="blas")
    return limiter
