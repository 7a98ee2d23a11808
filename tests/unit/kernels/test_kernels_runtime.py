"""The kernels' runtime plumbing: per-thread scratch buffers and the block thread pool (growing, in order, errors)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tstack.errors import TstackError
from tstack.kernels._runtime import constant_scratch, for_blocks, get_num_threads, scratch, set_num_threads


def test_scratch_is_reused_per_name_and_grows() -> None:
    a = scratch("test.a", np.int32, 10)
    b = scratch("test.a", np.int32, 5)
    assert np.shares_memory(a, b) and b.size == 5
    assert not np.shares_memory(a, scratch("test.a", np.int64, 10))  # a dtype is its own buffer
    assert not np.shares_memory(a, scratch("test.b", np.int32, 10))
    big = scratch("test.a", np.int32, 1000)
    assert big.size == 1000 and not np.shares_memory(a, big)


def test_constant_scratch_holds_its_value() -> None:
    ones = constant_scratch("test.c", np.int32, 8, 1)
    assert np.array_equal(ones, np.ones(8, dtype=np.int32))
    sevens = constant_scratch("test.c", np.int32, 4, 7)
    assert np.array_equal(sevens, np.full(4, 7, dtype=np.int32))


def test_pool_grows_with_the_thread_count() -> None:
    # Each share sleeps, so every share is in flight at once: the number of distinct threads is the thread count,
    # which needs a pool replaced by a larger one when the count goes up.
    def names(a: int, b: int) -> str:
        time.sleep(0.02)
        return threading.current_thread().name

    try:
        for threads in (2, 5, 3):
            set_num_threads(threads)
            assert get_num_threads() == threads
            seen = set(for_blocks(threads, 1, names))
            assert len(seen) == threads
            assert threading.current_thread().name in seen
            assert sum(name.startswith("tstack-kernels") for name in seen) == threads - 1
    finally:
        set_num_threads(1)
    assert set(for_blocks(4, 1, names)) == {threading.current_thread().name}


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_thread_counts(bad: object) -> None:
    with pytest.raises(TstackError, match="threads must be an integer"):
        set_num_threads(bad)  # type: ignore[arg-type]
    assert get_num_threads() == 1
