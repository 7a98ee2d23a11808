"""Where a search's objective calls run: in this process, one at a time (`LocalExecutor`, the default), or on Ray
actors (`RayExecutor`), one per CPU or per GPU share, while the search loop and the hardware pricing (microseconds)
stay in the driver.

Ray addresses: ``local`` starts a private Ray instance, ``auto`` joins the cluster started on this machine by
``ray start``, ``host:port`` or ``ray://host:port`` joins that head node; an address that does not answer is
refused before Ray is asked (Ray itself would retry for minutes).

Ray's usage statistics are switched only by its environment variable ``RAY_USAGE_STATS_ENABLED`` (or
``~/.ray/config.json``); library code sets no environment variable, so the CLI entry sets it (to 0, for the
private instance of ``--ray local``) and an API user sets it in their own process.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any, Protocol

from tstack.errors import TstackError
from tstack.nas.search_config import Objective, SearchError
from tstack.nas.space import Architecture

Outcome = float | BaseException
"""An objective call's perplexity, or what it raised."""


class Executor(Protocol):
    """Runs objective calls for the search loop: `capacity` at once, results collected by `wait`."""

    capacity: int

    def submit(self, number: int, arch: Architecture) -> None: ...

    def wait(self, timeout_s: float) -> list[tuple[int, Outcome]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs each objective call in this process, when it is submitted."""

    capacity = 1

    def __init__(self, objective: Objective) -> None:
        self._objective = objective
        self._done: list[tuple[int, Outcome]] = []

    def submit(self, number: int, arch: Architecture) -> None:
        try:
            self._done.append((number, float(self._objective(arch))))
        except TstackError:
            raise  # bad input (a missing corpus, a bad checkpoint) ends the search with its own message
        except Exception as exc:
            self._done.append((number, exc))

    def wait(self, timeout_s: float) -> list[tuple[int, Outcome]]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        pass


class _ObjectiveActor:
    """A Ray actor holding one objective (e.g. a loaded supernet), so each evaluation reuses it."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective

    def evaluate(self, arch: Architecture) -> float:
        return float(self.objective(arch))


def _probe_address(address: str, timeout_s: float = 3.0) -> None:
    """Refuse an address with nothing listening: Ray itself would retry for minutes."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise SearchError(f"Ray address {address!r} is not host:port, ray://host:port, auto or local")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SearchError(
            f"Ray at {address} does not answer ({reason}); start the head node with `ray start --head` and pass "
            "the address it prints, or use --ray local"
        ) from None


def _import_ray() -> Any:
    """Ray, untyped here: its stubs cover little of what is used and the import is optional."""
    try:
        import ray
    except ImportError:
        raise SearchError("--ray needs Ray: pip install 'tstack[distributed]'") from None
    return ray


def connect_ray(address: str, num_cpus: int | None = None) -> bool:
    """Join (or start, for ``local``) a Ray cluster; True when this call started Ray (so the caller shuts it down)."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        return True
    target = address
    if address == "auto":
        from ray._private import services  # how ray.init("auto") finds the cluster `ray start` left on this machine

        try:
            target = services.get_ray_address_from_environment("auto", None)
        except ConnectionError:
            raise SearchError(
                "--ray auto found no Ray cluster on this machine; start one with `ray start --head`, pass its "
                "address, or use --ray local"
            ) from None
    _probe_address(target)
    try:
        ray.init(address=target, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SearchError(f"cannot join the Ray cluster at {target}: {str(exc).splitlines()[0][:200]}") from None
    return True


class RayExecutor:
    """Objective calls on Ray actors; the driver keeps the search loop."""

    def __init__(
        self, objective: Objective, address: str, parallel: int | None, gpus: float, num_cpus: int | None
    ) -> None:
        ray = _import_ray()
        self._ray = ray
        self._started = connect_ray(address, num_cpus)
        try:
            resources = ray.cluster_resources()
            if parallel is None:
                parallel = int(resources.get("GPU", 0) // gpus) if gpus > 0 else int(resources.get("CPU", 1))
            self.capacity = max(1, parallel)
            actor_cls = ray.remote(num_cpus=0 if gpus > 0 else 1, num_gpus=gpus)(_ObjectiveActor)
            shared = ray.put(objective)
            self._idle = [actor_cls.remote(shared) for _ in range(self.capacity)]
            self._running: dict[Any, tuple[int, Any]] = {}
        except Exception:
            self.close()
            raise

    def submit(self, number: int, arch: Architecture) -> None:
        actor = self._idle.pop()
        self._running[actor.evaluate.remote(arch)] = (number, actor)

    def wait(self, timeout_s: float) -> list[tuple[int, Outcome]]:
        if not self._running:
            return []
        ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running), timeout=timeout_s)
        out: list[tuple[int, Outcome]] = []
        for ref in ready:
            number, actor = self._running.pop(ref)
            self._idle.append(actor)
            try:
                out.append((number, float(self._ray.get(ref))))
            except Exception as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, TstackError):
                    raise cause from None
                out.append((number, cause if isinstance(cause, BaseException) else exc))
        return out

    def close(self) -> None:
        for actor in getattr(self, "_idle", []):
            with contextlib.suppress(Exception):
                self._ray.kill(actor)
        if self._started:
            self._ray.shutdown()
