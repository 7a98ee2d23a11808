"""Keep the profiler's own log lines out of the user's terminal.

torch 2.13's Kineto prints `USDT:... profiler_start` and `... profiler_stop` to the process's stderr (file
descriptor 2, from C++) every time a profile starts and stops: a study prints dozens of them between its progress
lines. `quiet_profile` enters and exits the profiler with descriptor 2 pointed at a temporary file and writes back
everything else that arrived meanwhile, so no other message is lost.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_NOISE = b"USDT:"


@contextmanager
def without_native_lines(prefix: bytes = _NOISE) -> Iterator[None]:
    """Drop the lines starting with `prefix` that native code writes to stderr inside the block; keep the rest."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().splitlines(keepends=True) if not line.startswith(prefix)]
            if kept:
                os.write(2, b"".join(kept))


@contextmanager
def quiet_profile(**kwargs: Any) -> Iterator[Any]:
    """`torch.profiler.profile(**kwargs)`, entered and exited without the profiler's start/stop log lines."""
    from torch.profiler import profile

    prof: Any = profile(**kwargs)
    with without_native_lines():
        prof.__enter__()
    try:
        yield prof
    finally:
        with without_native_lines():
            prof.__exit__(None, None, None)
