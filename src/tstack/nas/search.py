"""Hardware-aware search over a `SearchSpace`: minimize (perplexity, EDP) with Optuna's ask/tell.

Algorithms:

- ``evolution`` (the paper's, digest §6.4): a population of `population` candidates (the baseline, i.e. the largest
  architecture, plus random ones); each iteration evaluates the population, keeps only its Pareto-optimal members and
  refills the population by mutating retained members, each gene resampled with probability `mutation_prob` (0.2).
  Children are new architectures only (never one the study has already seen), so no evaluation is repeated. When the
  front would fill the population (the paper does not say what then) it is thinned by NSGA-II's crowding distance
  so that at least a quarter of each generation is new children.
- ``nsga2``: Optuna's NSGAIISampler (population `population`), the textbook multi-objective GA.
- ``random``: Optuna's RandomSampler, the baseline any search must beat at equal budget.

One candidate is one Optuna trial: its genes are the trial's params (categorical distributions with the space's
choices), its values are (perplexity, EDP in pJ x cycles), and user attrs hold the architecture key, latency,
energy and, for evolution, its generation. The study's user attr ``tstack`` records what the study searches (space,
hardware, sequence length, phase, algorithm, ...); reopening it with other settings is refused.

Crash safety and several workers. All state is in the storage, so a killed search resumes where it stopped:

- Evolution plans a generation by enqueueing its trials (`study.enqueue_trial`) only when the previous one has
  finished, and the plan is a deterministic function of the finished trials and the seed, so every worker (and a
  restarted one) derives the same population from storage. Two workers planning at once enqueue the same trials
  twice; the duplicates are dropped by the rule below.
- Evaluations never repeat. A worker evaluates a trial only if no lower-numbered trial with the same architecture
  key is waiting, running or complete: a complete one lends its values (the trial is "cached", no objective call),
  a waiting or running one makes this trial a pruned duplicate. Trial numbers are assigned in creation order by the
  storage, and before deciding a worker waits until every lower-numbered trial has published its key (enqueued
  trials carry it from creation; sampled ones set it right after `ask`), so two workers always agree which trial
  owns an architecture.
- A trial left running by a dead worker is detected (same host: its process is gone; any host: no heartbeat for
  `stale_after_s`; a worker killed between claiming a trial and naming itself: no owner after 10 s), failed and
  re-enqueued; the transition to FAIL is atomic in Optuna's storages, so exactly one worker re-enqueues it. An
  evaluation interrupted by the crash is redone once; one whose result reached storage never.

Storage: a file path (default for the CLI) is an Optuna JournalStorage with a JournalFileBackend: an append-only
log, safe for several processes on one machine or a shared file system, and faster than SQLite for many small
writes. ``sqlite:///file.db`` and ``postgresql://user:pass@host/db`` (several machines; needs a driver such as
psycopg2) go to Optuna's RDBStorage; ``memory`` keeps the study in this process only.

Ray: with `ray_address`, objective calls run on a Ray cluster (one actor per CPU, or per GPU with `ray_gpus`), the
search loop and the hardware pricing (microseconds) stay in the driver. ``local`` starts a private Ray instance,
``auto`` joins the cluster started on this machine by ``ray start``, ``host:port`` or ``ray://host:port`` joins that
head node; an address that does not answer is refused before Ray is asked.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tstack.errors import SpecError, TstackError
from tstack.nas.pareto import Point, pareto_mask
from tstack.nas.pricing import PriceTable
from tstack.nas.space import Architecture, SearchSpace

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

ALGORITHMS = ("evolution", "nsga2", "random")
DEFAULT_STUDY = "tstack-nas"
STUDY_FORMAT = 1
_POLL_S = 0.05
_OWNERLESS_S = 10.0  # a running trial with no worker this long after it started is orphaned (see recover_stale)
_PLAN_ATTRS = ("generation", "role", "parent", "plan_size")  # what a re-enqueued trial keeps of its original

Objective = Callable[[Architecture], float]
"""Perplexity (lower is better) of one architecture."""


class SearchError(TstackError):
    """A search cannot start or go on: storage, Ray, or an objective that keeps failing."""


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """How to search. `max_evaluations` caps objective calls (default: evolution is bounded by its iterations,
    NSGA-II and random search get population x iterations)."""

    algorithm: str = "evolution"
    population: int = 40
    iterations: int = 40
    mutation_prob: float = 0.2
    seed: int = 0
    max_evaluations: int | None = None
    heartbeat_s: float = 10.0
    stale_after_s: float = 60.0
    max_consecutive_failures: int = 5

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise SpecError(f"unknown search algorithm {self.algorithm!r}; choose one of: {', '.join(ALGORITHMS)}")
        if self.population < 2 or self.iterations < 1:
            raise SpecError("a search needs population >= 2 and iterations >= 1")
        if not 0.0 < self.mutation_prob <= 1.0:
            raise SpecError(f"mutation probability must be in (0, 1], got {self.mutation_prob}")
        if self.max_evaluations is not None and self.max_evaluations < 1:
            raise SpecError("max_evaluations must be at least 1")

    @property
    def budget(self) -> int | None:
        """Most objective calls this search makes (None: evolution, bounded by its iterations)."""
        if self.max_evaluations is not None:
            return self.max_evaluations
        return None if self.algorithm == "evolution" else self.population * self.iterations


@dataclass(frozen=True, slots=True)
class SearchProgress:
    """Where a search stands; `completed` of `total` in `unit`s (evolution: generations, else evaluations)."""

    completed: int
    total: int
    unit: str
    evaluations: int
    front_size: int


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A candidate with its results, as stored in the study (the first complete trial of its key)."""

    arch: Architecture
    point: Point
    trial: int
    generation: int | None
    role: str


@dataclass(frozen=True, slots=True)
class StudyResults:
    """Everything a report needs, read back from storage."""

    study_name: str
    meta: Mapping[str, Any]
    evaluated: tuple[Evaluated, ...]
    n_trials: int
    n_evaluations: int  # objective calls that reached storage
    n_cached: int
    n_duplicates: int
    n_failed: int
    baseline: Evaluated | None
    baseline_perplexity: float | None  # a stand-alone trained baseline's, when the study records one

    def points(self) -> list[Point]:
        return [e.point for e in self.evaluated]

    def front(self) -> list[Evaluated]:
        """Pareto-optimal candidates in (perplexity, EDP), by perplexity."""
        if not self.evaluated:
            return []
        mask = pareto_mask([(e.point.perplexity, e.point.edp) for e in self.evaluated])
        chosen = [e for e, m in zip(self.evaluated, mask, strict=True) if m]
        return sorted(chosen, key=lambda e: (e.point.perplexity, e.point.edp, e.point.key))


# -- storage ------------------------------------------------------------------------------------------------------
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


def redact(storage: object) -> str:
    """A storage URL without its password, fit for messages and reports."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", str(storage))


def _is_url(text: str) -> bool:
    scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else ""
    return scheme in _RDB_SCHEMES


def open_storage(
    storage: str | Path | optuna.storages.BaseStorage, *, create: bool = True
) -> optuna.storages.BaseStorage:
    """An Optuna storage from a file path (journal file), an RDB URL, or ``memory`` (see the module docstring);
    a storage object is returned as it is. With `create=False` (reading a study back) a journal or SQLite file that
    does not exist is an error, not a new empty file."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from tstack.nas.journal import JournalLock, clean_journal

    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    text = str(storage)
    if text == "memory":
        return optuna.storages.InMemoryStorage()
    if "://" in text and not _is_url(text):
        raise SearchError(
            f"unsupported storage {redact(text)!r}; use a journal file path, sqlite:///FILE, postgresql://... or memory"
        )
    if _is_url(text):
        shown = redact(text)
        db_file = text.split("///", 1)[1] if text.startswith("sqlite:///") else None
        if not create and db_file and db_file != ":memory:" and not Path(db_file).is_file():
            raise SearchError(f"storage {shown}: no such database file; check the path (or run `tstack nas search`)")
        url = _postgres_driver(text) if text.startswith(("postgresql://", "postgres://")) else text
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
        except ImportError:
            raise SearchError(
                f"storage {shown} needs a database driver that is not installed; for PostgreSQL run "
                "pip install 'psycopg[binary]' (or psycopg2-binary)"
            ) from None
        except Exception as exc:  # sqlalchemy's OperationalError and friends: the database did not answer
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SearchError(
                f"cannot open storage {shown}: {reason[:200]}; check that the database runs and the URL is right"
            ) from None
    path = Path(text)
    if path.is_dir():
        raise SearchError(f"storage {text} is a directory; give a file path such as {path / 'study.journal'}")
    if not create and not path.is_file():
        raise SearchError(
            f"storage file {text} does not exist; check the path, or run `tstack nas search --storage {text}` first"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # absolute: Optuna's lock and ours name the journal by this string, and a relative one breaks its lock
        path = path.resolve()
        clean_journal(path)  # a killed run's stale lock and temporary files, before anything waits on them
        backend = JournalFileBackend(str(path), lock_obj=JournalLock(path))
        return optuna.storages.JournalStorage(backend)  # reads the whole journal
    except OSError as exc:
        raise SearchError(f"cannot open storage file {text}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise SearchError(
            f"storage file {text} is not an Optuna journal ({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); "
            "give the journal `tstack nas search` wrote, or a new path to start a study"
        ) from None


def _postgres_driver(url: str) -> str:
    """Name the driver that is installed: SQLAlchemy's default for postgresql:// changed from psycopg2 to psycopg
    (3) in 2.1, and postgres:// is no longer a dialect name at all."""
    import importlib.util

    rest = url.split("://", 1)[1]
    for module, scheme in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"{scheme}://{rest}"
    return f"postgresql://{rest}"


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {"connect_args": {"connect_timeout": 10}}  # an unreachable server fails in seconds, not minutes


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Library code never prints: silence Optuna's per-trial log lines for the duration of a call."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _sampler(config: SearchConfig, n_trials: int) -> optuna.samplers.BaseSampler:
    """A sampler seeded by the config's seed and the study's size, so a resumed search does not replay the
    proposals it already made (concurrent workers should pass different seeds to avoid duplicate proposals)."""
    import optuna

    seed = int(np.random.SeedSequence([config.seed, n_trials]).generate_state(1)[0])
    if config.algorithm == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=config.population, seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def _study_meta(space: SearchSpace, table: PriceTable, config: SearchConfig, objective_name: str) -> dict[str, Any]:
    return {
        "format": STUDY_FORMAT,
        "space": space.to_dict(),
        "hardware": table.hardware,
        "seq_len": table.seq_len,
        "phase": table.phase.value,
        "lm_head": table.lm_head,
        "mapper": table.mapper,
        "algorithm": config.algorithm,
        "population": config.population,
        "iterations": config.iterations,
        "mutation_prob": config.mutation_prob,
        "seed": config.seed,
        "max_evaluations": config.max_evaluations,
        "objective": objective_name,
    }


# settings a resumed study may change: how long it runs
_EXTENSIBLE = frozenset({"iterations", "max_evaluations"})


def open_study(
    storage: str | Path | optuna.storages.BaseStorage,
    study_name: str,
    meta: Mapping[str, Any],
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Create or reopen the study; refuse one that was created to search something else."""
    import optuna

    store = open_storage(storage)
    with _quiet_optuna():
        study = optuna.create_study(
            storage=store,
            study_name=study_name,
            directions=["minimize", "minimize"],
            sampler=sampler,
            load_if_exists=True,
        )
    stored = study.user_attrs.get("tstack")
    if stored is None:
        study.set_user_attr("tstack", dict(meta))
        return study
    diff = [k for k in meta if k not in _EXTENSIBLE and stored.get(k) != meta[k]]
    if diff:
        k = diff[0]
        raise SearchError(
            f"study {study_name!r} was created with {k}={stored.get(k)!r}, not {meta[k]!r}; resume it with the same "
            "settings or pass another --study name"
        )
    if any(stored.get(k) != meta[k] for k in _EXTENSIBLE):
        study.set_user_attr("tstack", {**stored, **{k: meta[k] for k in _EXTENSIBLE}})
    return study


# -- who runs a trial, and is it still alive ---------------------------------------------------------------------
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class _Worker:
    host: str = field(default_factory=socket.gethostname)
    boot: str = field(default_factory=_boot_id)
    pid: int = field(default_factory=os.getpid)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_attr(self) -> dict[str, Any]:
        return {"host": self.host, "boot": self.boot, "pid": self.pid, "id": self.id}

    def is_dead(self, attr: Mapping[str, Any]) -> bool | None:
        """True/False when `attr` names a process on this machine (since its last boot); None when it cannot tell."""
        if attr.get("host") != self.host or attr.get("boot") != self.boot:
            return None
        try:
            os.kill(int(attr["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, KeyError, TypeError, ValueError):
            return False
        return False


# -- executors: where objective calls run ----------------------------------------------------------------------
class _Executor(Protocol):
    capacity: int

    def submit(self, number: int, arch: Architecture) -> None: ...

    def wait(self, timeout_s: float) -> list[tuple[int, float | BaseException]]: ...

    def close(self) -> None: ...


class _LocalExecutor:
    """Runs each objective call in this process, when it is submitted."""

    capacity = 1

    def __init__(self, objective: Objective) -> None:
        self._objective = objective
        self._done: list[tuple[int, float | BaseException]] = []

    def submit(self, number: int, arch: Architecture) -> None:
        try:
            self._done.append((number, float(self._objective(arch))))
        except TstackError:
            raise  # bad input (a missing corpus, a bad checkpoint) ends the search with its own message
        except Exception as exc:
            self._done.append((number, exc))

    def wait(self, timeout_s: float) -> list[tuple[int, float | BaseException]]:
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
        # a private instance on this machine; nothing to report home to from a cluster we started ourselves
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
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


class _RayExecutor:
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

    def wait(self, timeout_s: float) -> list[tuple[int, float | BaseException]]:
        if not self._running:
            return []
        ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running), timeout=timeout_s)
        out: list[tuple[int, float | BaseException]] = []
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


# -- the search loop ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Job:
    number: int
    arch: Architecture
    edp: float


class _Search:
    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace,
        table: PriceTable,
        config: SearchConfig,
        executor: _Executor,
        progress: Callable[[SearchProgress], None] | None,
    ) -> None:
        import optuna

        self.optuna = optuna
        self.study = study
        self.storage = study._storage  # the same object the study writes through (Optuna keeps no public handle)
        self.study_id = study._study_id
        self.space = space
        self.table = table
        self.config = config
        self.executor = executor
        self.progress = progress
        self.worker = _Worker()
        self.choices = space.gene_choices()
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {
            name: optuna.distributions.CategoricalDistribution(list(values)) for name, values in self.choices.items()
        }
        self.inflight: dict[int, _Job] = {}
        self.failures_in_a_row = 0
        self._stop_heartbeat = threading.Event()
        self._lock = threading.Lock()

    # -- storage helpers --
    def trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def _enqueue(self, arch: Architecture, attrs: Mapping[str, Any]) -> None:
        genes = self.space.to_genes(arch)
        self.study.enqueue_trial(dict(genes), user_attrs={"key": arch.key, **attrs})

    def _fail_if_running(self, number: int) -> bool:
        """Atomically move a running trial to FAIL; False when another worker finished it first."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            self.storage.set_trial_state_values(self._trial_id(number), TrialState.FAIL)
        except UpdateFinishedTrialError:
            return False
        return True

    # -- liveness --
    def _heartbeat(self) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        while not self._stop_heartbeat.wait(self.config.heartbeat_s):
            with self._lock:
                numbers = list(self.inflight)
            for number in numbers:
                with contextlib.suppress(UpdateFinishedTrialError, KeyError, TstackError):  # the loop sees it too
                    self.storage.set_trial_user_attr(self._trial_id(number), "heartbeat", time.time())

    def recover_stale(self, trials: Sequence[FrozenTrial]) -> bool:
        """Fail and re-enqueue trials whose worker is gone; True when storage changed."""
        from optuna.trial import TrialState

        changed = False
        now = time.time()
        for t in trials:
            if t.state is not TrialState.RUNNING or t.number in self.inflight:
                continue
            owner = t.user_attrs.get("worker") or {}
            if owner.get("id") == self.worker.id:
                continue
            dead = self.worker.is_dead(owner) if owner else None
            started = t.datetime_start.timestamp() if t.datetime_start else now
            if not owner:
                # a live worker names itself right after `ask` (one journal record later): a trial that has no
                # owner after a few seconds belongs to a worker killed in between
                dead = now - started > min(_OWNERLESS_S, self.config.stale_after_s)
            elif dead is None:
                dead = now - float(t.user_attrs.get("heartbeat", started)) > self.config.stale_after_s
            if not dead or not self._fail_if_running(t.number):
                continue
            changed = True
            key = t.user_attrs.get("key")
            if key:  # its evaluation never reached storage: give it to the next worker
                attrs = {k: v for k, v in t.user_attrs.items() if k in _PLAN_ATTRS}
                self._enqueue(Architecture.from_key(key), {**attrs, "retry_of": t.number})
        return changed

    # -- who evaluates an architecture --
    def _owner_decision(self, number: int, key: str) -> tuple[str, FrozenTrial | None]:
        """("evaluate", None), ("cached", the complete trial) or ("duplicate", the live trial); see module doc."""
        from optuna.trial import TrialState

        while True:
            trials = self.trials()
            lower = [t for t in trials if t.number < number]
            unpublished = [t for t in lower if "key" not in t.user_attrs and not t.state.is_finished()]
            if unpublished:
                if not self.recover_stale(trials):
                    time.sleep(_POLL_S)
                continue
            same = [t for t in lower if t.user_attrs.get("key") == key]
            done = [t for t in same if t.state is TrialState.COMPLETE]
            if done:
                return "cached", done[0]
            live = [t for t in same if t.state in (TrialState.RUNNING, TrialState.WAITING)]
            if live:
                return "duplicate", live[0]
            return "evaluate", None

    # -- one trial --
    def start_one(self, from_queue_only: bool) -> bool:
        """Claim a trial and start its evaluation; False when there was nothing to claim."""
        from optuna.trial import TrialState

        trial = self.study.ask(self.distributions)
        trial.set_user_attr("worker", self.worker.to_attr())
        attrs = trial.user_attrs
        if from_queue_only and "key" not in attrs:
            # the queue emptied between our look and our ask, so Optuna made a fresh trial: drop it
            trial.set_user_attr("role", "empty")
            self.study.tell(trial, state=TrialState.PRUNED)
            return False
        arch = self.space.from_genes({name: int(v) for name, v in trial.params.items()})
        if "key" not in attrs:
            trial.set_user_attr("key", arch.key)
            trial.set_user_attr("role", "sample")
        cost = self.table.price(arch)
        decision, other = self._owner_decision(trial.number, arch.key)
        if decision == "duplicate":
            assert other is not None
            trial.set_user_attr("duplicate_of", other.number)
            self.study.tell(trial, state=TrialState.PRUNED)
            return True
        if decision == "cached":
            assert other is not None and other.values is not None
            for name in ("perplexity", "latency_cycles", "energy_pj", "edp"):
                trial.set_user_attr(name, other.user_attrs[name])
            trial.set_user_attr("cached_from", other.number)
            self.study.tell(trial, list(other.values))
            return True
        trial.set_user_attr("latency_cycles", cost.latency_cycles)
        trial.set_user_attr("energy_pj", cost.energy_pj)
        trial.set_user_attr("edp", cost.edp)
        with self._lock:
            self.inflight[trial.number] = _Job(trial.number, arch, cost.edp)
        try:
            self.executor.submit(trial.number, arch)
        except BaseException:
            # bad input aborts the search: hand the candidate back so a fixed rerun evaluates it
            with self._lock:
                self.inflight.pop(trial.number, None)
            if self._fail_if_running(trial.number):
                attrs = {k: v for k, v in trial.user_attrs.items() if k in _PLAN_ATTRS}
                self._enqueue(arch, {**attrs, "retry_of": trial.number})
            raise
        return True

    def finish(self, number: int, outcome: float | BaseException) -> None:
        from optuna.trial import TrialState

        with self._lock:
            job = self.inflight.pop(number)
        trial_id = self._trial_id(number)
        if isinstance(outcome, BaseException) or not math.isfinite(outcome):
            reason = f"{type(outcome).__name__}: {outcome}" if isinstance(outcome, BaseException) else "not finite"
            with contextlib.suppress(Exception):  # already finished by a worker that took it for dead
                self.storage.set_trial_user_attr(trial_id, "error", reason[:500])
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= self.config.max_consecutive_failures:
                raise SearchError(
                    f"the objective failed {self.failures_in_a_row} times in a row (last: {job.arch.key}: "
                    f"{reason[:200]}); fix it and rerun the same command to resume"
                )
            return
        self.failures_in_a_row = 0
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self.storage.set_trial_user_attr(trial_id, "perplexity", float(outcome))
            self.study.tell(number, [float(outcome), job.edp], skip_if_finished=True)
        except UpdateFinishedTrialError:
            # another worker took this trial for dead (no heartbeat for stale_after_s) and re-enqueued it; its
            # copy will be evaluated, so this result is dropped rather than stored twice
            pass

    # -- evolution: the plan lives in storage --
    def _results(self, trials: Sequence[FrozenTrial]) -> dict[str, tuple[float, float]]:
        from optuna.trial import TrialState

        out: dict[str, tuple[float, float]] = {}
        for t in trials:
            key = t.user_attrs.get("key")
            if t.state is TrialState.COMPLETE and key and key not in out and t.values is not None:
                out[key] = (float(t.values[0]), float(t.values[1]))
        return out

    def population(self, trials: Sequence[FrozenTrial], generation: int) -> list[str]:
        """The population evaluated in `generation`: the previous population's front plus this generation's
        evaluated children, re-derived from storage alone."""
        results = self._results(trials)
        by_gen: dict[int, list[str]] = {}
        for t in trials:
            g, key = t.user_attrs.get("generation"), t.user_attrs.get("key")
            if g is not None and key in results and key not in by_gen.setdefault(int(g), []):
                by_gen[int(g)].append(key)
        pop: list[str] = []
        for g in range(generation + 1):
            pop = self.retained(pop, results) if g else []
            pop += [k for k in by_gen.get(g, []) if k not in pop]
        return pop

    def retained(self, keys: Sequence[str], results: Mapping[str, tuple[float, float]]) -> list[str]:
        """The members of a population that survive into the next: its Pareto front, thinned by crowding distance
        (NSGA-II's) when the front would leave fewer than a quarter of the population to new children."""
        front = _front_keys(keys, results)
        cap = self.config.population - max(1, self.config.population // 4)
        if len(front) > cap:
            front = _least_crowded(front, results, cap)
        return sorted(front, key=lambda k: (*results[k], k))

    def plan_evolution(self, trials: Sequence[FrozenTrial]) -> str:
        """ "work" (trials are waiting), "wait" (the generation runs elsewhere) or "done"; enqueues the next
        generation when the current one has finished."""
        from optuna.trial import TrialState

        cfg = self.config
        tagged = [t for t in trials if "generation" in t.user_attrs]
        if any(t.state is TrialState.WAITING for t in tagged):
            return "work"
        if not tagged:
            return self._enqueue_generation(0, trials)
        gen = max(int(t.user_attrs["generation"]) for t in tagged)
        if not _generation_done(tagged, gen):
            return "wait"
        if gen + 1 >= cfg.iterations or self._budget_left(trials) <= 0:
            return "done"
        return self._enqueue_generation(gen + 1, trials)

    def _budget_left(self, trials: Sequence[FrozenTrial]) -> int:
        budget = self.config.budget
        return 1 << 62 if budget is None else budget - _n_evaluations(trials)

    def _enqueue_generation(self, gen: int, trials: Sequence[FrozenTrial]) -> str:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, gen])  # the plan depends on storage and seed only
        seen = {str(t.user_attrs["key"]) for t in trials if "key" in t.user_attrs}
        room = min(cfg.population, self._budget_left(trials))
        chosen: list[tuple[Architecture, dict[str, Any]]] = []
        if gen == 0:
            base = self.space.largest()
            if base.key not in seen:
                chosen.append((base, {"generation": 0, "role": "baseline"}))
            for _ in range(100 * cfg.population):
                if len(chosen) >= room:
                    break
                arch = self.space.sample(rng)
                if arch.key not in seen and all(arch.key != a.key for a, _ in chosen):
                    chosen.append((arch, {"generation": 0, "role": "random"}))
        else:
            results = self._results(trials)
            retained = self.retained(self.population(trials, gen - 1), results)
            want = min(room, cfg.population - len(retained))
            for _ in range(200 * want):
                if len(chosen) >= want or not retained:
                    break
                parent = retained[int(rng.integers(len(retained)))]
                child = self.space.mutate(Architecture.from_key(parent), rng, cfg.mutation_prob)
                if child.key not in seen and all(child.key != a.key for a, _ in chosen):
                    chosen.append((child, {"generation": gen, "role": "child", "parent": parent}))
        if not chosen:  # the space is exhausted around the front: nothing new to evaluate
            return "done"
        for arch, attrs in chosen:
            # plan_size: another worker may see the plan half enqueued; it must not take that half for the whole
            self._enqueue(arch, {**attrs, "plan_size": len(chosen)})
        return "work"

    def plan_sampler(self, trials: Sequence[FrozenTrial]) -> str:
        from optuna.trial import TrialState

        budget = self.config.budget or 0
        if not trials:
            self._enqueue(self.space.largest(), {"role": "baseline"})
            return "work"
        live = [
            t
            for t in trials
            if t.state in (TrialState.RUNNING, TrialState.WAITING)
            or (t.state is TrialState.COMPLETE and "cached_from" not in t.user_attrs)
        ]
        if len(live) >= budget or len(trials) >= 10 * budget + 100:  # the second: a tiny space gives only repeats
            return "done"
        return "work"

    def report(self, trials: Sequence[FrozenTrial]) -> None:
        if self.progress is None:
            return
        results = self._results(trials)
        front = _front_keys(list(results), results)
        evaluations = _n_evaluations(trials)
        if self.config.algorithm == "evolution":
            gens = [int(t.user_attrs["generation"]) for t in trials if "generation" in t.user_attrs]
            done_gens = 0
            if gens:
                current = max(gens)
                tagged = [t for t in trials if "generation" in t.user_attrs]
                done_gens = current + 1 if _generation_done(tagged, current) else current
            self.progress(SearchProgress(done_gens, self.config.iterations, "generation", evaluations, len(front)))
        else:
            total = self.config.budget or 0
            self.progress(SearchProgress(min(evaluations, total), total, "evaluation", evaluations, len(front)))

    def run(self) -> None:
        beat = threading.Thread(target=self._heartbeat, name="tstack-nas-heartbeat", daemon=True)
        beat.start()
        try:
            self._loop()
        finally:
            self._stop_heartbeat.set()
            beat.join(timeout=5)

    def _loop(self) -> None:
        evolution = self.config.algorithm == "evolution"
        while True:
            trials = self.trials()
            if self.recover_stale(trials):
                trials = self.trials()
            status = "busy"
            if len(self.inflight) < self.executor.capacity:
                status = self.plan_evolution(trials) if evolution else self.plan_sampler(trials)
                if status == "work":
                    self.start_one(from_queue_only=evolution)
                    if self.executor.capacity > 1:
                        continue  # fill every free slot before waiting
            for number, outcome in self.executor.wait(_POLL_S if self.inflight else 0.0):
                self.finish(number, outcome)
            self.report(self.trials())
            if status == "done" and not self.inflight:
                return
            if status == "wait" and not self.inflight:
                time.sleep(_POLL_S)


def _generation_done(tagged: Sequence[FrozenTrial], gen: int) -> bool:
    """Every planned architecture of generation `gen` is in storage and every trial of it has finished."""
    current = [t for t in tagged if int(t.user_attrs["generation"]) == gen]
    planned = max(int(t.user_attrs.get("plan_size", 0)) for t in current)
    keys = {t.user_attrs.get("key") for t in current}
    return len(keys) >= planned and all(t.state.is_finished() for t in tagged)


def _front_keys(keys: Sequence[str], results: Mapping[str, tuple[float, float]]) -> list[str]:
    keys = [k for k in keys if k in results]
    if not keys:
        return []
    mask = pareto_mask([results[k] for k in keys])
    return [k for k, m in zip(keys, mask, strict=True) if m]


def _least_crowded(keys: Sequence[str], results: Mapping[str, tuple[float, float]], keep: int) -> list[str]:
    """The `keep` front members with the largest crowding distance (the two extremes always stay)."""
    order = sorted(keys, key=lambda k: (*results[k], k))
    pts = np.array([results[k] for k in order], dtype=np.float64)
    span = np.maximum(pts.max(axis=0) - pts.min(axis=0), 1e-300)
    crowd = np.full(len(order), np.inf)
    if len(order) > 2:
        crowd[1:-1] = (np.abs(pts[2:] - pts[:-2]) / span).sum(axis=1)
    ranked = sorted(range(len(order)), key=lambda i: (-crowd[i], order[i]))
    return [order[i] for i in sorted(ranked[:keep])]


def _n_evaluations(trials: Sequence[FrozenTrial]) -> int:
    """Objective calls whose result reached storage (complete trials that were not lent another's values)."""
    from optuna.trial import TrialState

    return sum(1 for t in trials if t.state is TrialState.COMPLETE and "cached_from" not in t.user_attrs)


def run_search(
    space: SearchSpace,
    table: PriceTable,
    objective: Objective,
    *,
    storage: str | Path | optuna.storages.BaseStorage,
    study_name: str = DEFAULT_STUDY,
    config: SearchConfig | None = None,
    objective_name: str = "custom",
    ray_address: str | None = None,
    ray_gpus: float = 0.0,
    parallel: int | None = None,
    ray_num_cpus: int | None = None,
    progress: Callable[[SearchProgress], None] | None = None,
    baseline_perplexity: float | None = None,
) -> StudyResults:
    """Search `space` for architectures that minimize (objective perplexity, EDP priced by `table`).

    Resumes the study `study_name` in `storage` if it exists (see the module docstring for crash safety, several
    workers and Ray). `baseline_perplexity`, when given, is a stand-alone trained baseline's perplexity, recorded
    in the study for the report's selections."""
    cfg = config or SearchConfig()
    if table.space != space:
        raise SpecError(f"the price table was built for search space {table.space.name!r}, not {space.name!r}")
    meta = _study_meta(space, table, cfg, objective_name)
    store = open_storage(storage)
    with _quiet_optuna():
        import optuna

        n_existing = 0
        with contextlib.suppress(KeyError):
            n_existing = len(optuna.load_study(study_name=study_name, storage=store).trials)
        study = open_study(store, study_name, meta, _sampler(cfg, n_existing))
        if baseline_perplexity is not None:
            study.set_user_attr("baseline_perplexity", float(baseline_perplexity))
        executor: _Executor
        if ray_address is not None:
            executor = _RayExecutor(objective, ray_address, parallel, ray_gpus, ray_num_cpus)
        else:
            executor = _LocalExecutor(objective)
        try:
            _Search(study, space, table, cfg, executor, progress).run()
        finally:
            executor.close()
        return results_of(study)


def results_of(study: optuna.Study) -> StudyResults:
    """A study's candidates and counts (each architecture once: its first complete trial)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    seen: set[str] = set()
    evaluated: list[Evaluated] = []
    baseline = None
    for t in trials:
        key = t.user_attrs.get("key")
        if t.state is not TrialState.COMPLETE or not key or key in seen or t.values is None:
            continue
        seen.add(key)
        point = Point(key, float(t.values[0]), float(t.user_attrs["latency_cycles"]), float(t.user_attrs["energy_pj"]))
        gen = t.user_attrs.get("generation")
        e = Evaluated(Architecture.from_key(key), point, t.number, None if gen is None else int(gen),
                      str(t.user_attrs.get("role", "sample")))  # fmt: skip
        evaluated.append(e)
    meta = dict(study.user_attrs.get("tstack", {}))
    if meta.get("space"):
        from tstack.nas.space import space_from_dict

        largest = space_from_dict(meta["space"]).largest().key
        baseline = next((e for e in evaluated if e.point.key == largest), None)
    bp = study.user_attrs.get("baseline_perplexity")
    return StudyResults(
        study_name=study.study_name,
        meta=meta,
        evaluated=tuple(evaluated),
        n_trials=len(trials),
        n_evaluations=_n_evaluations(trials),
        n_cached=sum(1 for t in trials if t.state is TrialState.COMPLETE and "cached_from" in t.user_attrs),
        n_duplicates=sum(1 for t in trials if "duplicate_of" in t.user_attrs),
        n_failed=sum(1 for t in trials if t.state is TrialState.FAIL),
        baseline=baseline,
        baseline_perplexity=None if bp is None else float(bp),
    )


def load_results(storage: str | Path | optuna.storages.BaseStorage, study_name: str = DEFAULT_STUDY) -> StudyResults:
    """Read a study back (for `tstack nas report`); a clear error when there is none by that name."""
    import optuna

    store = open_storage(storage, create=False)
    with _quiet_optuna():
        try:
            study = optuna.load_study(study_name=study_name, storage=store)
        except KeyError:
            names = optuna.get_all_study_names(store)
            hint = f"studies there: {', '.join(names)}" if names else "it holds no study; run `tstack nas search` first"
            raise SearchError(f"no study named {study_name!r} in {redact(storage)}; {hint}") from None
        return results_of(study)


@dataclass
class SupernetObjective:
    """Perplexity of a sub-network of a trained supernet on held-out text (the paper's objective).

    The evaluator (checkpoint and corpus) is loaded on first use in each process and never pickled, so Ray ships
    only the paths."""

    checkpoint: Path
    corpus: Path | None = None
    max_tokens: int | None = None
    threads: int | None = None
    _evaluator: Any = field(default=None, init=False, repr=False, compare=False)

    def load(self) -> Any:
        if self._evaluator is None:
            from tstack.nas.data import load_corpus
            from tstack.nas.evaluate import PerplexityEvaluator

            kwargs: dict[str, Any] = {"threads": self.threads}
            if self.max_tokens is not None:
                kwargs["max_tokens"] = self.max_tokens
            self._evaluator = PerplexityEvaluator(self.checkpoint, load_corpus(self.corpus), **kwargs)
        return self._evaluator

    def __call__(self, arch: Architecture) -> float:
        return float(self.load().perplexity(arch))

    def __getstate__(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "corpus": self.corpus, "max_tokens": self.max_tokens,
                "threads": self.threads}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._evaluator = None


def with_budget(config: SearchConfig, evaluations: int) -> SearchConfig:
    """The same search capped at `evaluations` objective calls (benchmarks compare algorithms at equal budget)."""
    return replace(config, max_evaluations=evaluations)
