"""Where co-design evaluations run: in this process (the default) or on Ray actors, a batch at a time.

Both return a batch's results in the order of its candidates, so a search's outcome does not depend on where its
evaluations ran (the tests check a search on Ray against the same search in-process). An evaluation that raises a
`TstackError` (bad input) ends the search with its message; any other exception is returned as that candidate's
result, and the search fails the trial.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from tstack.codesign.evaluate import Candidate, Evaluation, Evaluator
from tstack.errors import TstackError

Outcome = Evaluation | BaseException


class Executor(Protocol):
    def map(self, candidates: Sequence[Candidate]) -> list[Outcome]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Evaluations one after another in this process."""

    def __init__(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def map(self, candidates: Sequence[Candidate]) -> list[Outcome]:
        out: list[Outcome] = []
        for candidate in candidates:
            try:
                out.append(self._evaluator(candidate))
            except TstackError:
                raise
            except Exception as exc:
                out.append(exc)
        return out

    def close(self) -> None:
        pass


class _EvaluatorActor:
    """A Ray actor holding one evaluator, so its price tables persist between the evaluations it runs."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def evaluate(self, candidate: Candidate) -> Evaluation:
        return self.evaluator(candidate)


def import_ray() -> Any:
    """Ray, untyped here (its stubs cover little of what is used), or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise TstackError("--ray needs Ray: pip install 'tstack[distributed]'") from None
    return ray


class RayExecutor:
    """Evaluations on `workers` Ray actors (one CPU each) of the cluster this process has joined."""

    def __init__(self, evaluator: Evaluator, workers: int) -> None:
        ray = import_ray()
        self._ray = ray
        if not ray.is_initialized():
            raise TstackError("RayExecutor needs Ray started first (tstack.nas.search.connect_ray)")
        actor = ray.remote(num_cpus=1)(_EvaluatorActor)
        shared = ray.put(evaluator)
        self._actors = [actor.remote(shared) for _ in range(max(1, workers))]

    def map(self, candidates: Sequence[Candidate]) -> list[Outcome]:
        # round robin: an actor runs its calls one after another, and a batch is a few similar evaluations
        refs = [self._actors[i % len(self._actors)].evaluate.remote(c) for i, c in enumerate(candidates)]
        out: list[Outcome] = []
        for ref in refs:  # in submission order
            try:
                out.append(self._ray.get(ref))
            except Exception as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, TstackError):
                    raise cause from None
                out.append(cause if isinstance(cause, BaseException) else exc)
        return out

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor)
