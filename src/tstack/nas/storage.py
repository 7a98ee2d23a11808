"""Where a search's state lives: an Optuna storage opened from what the user gave, and the study in it.

A file path (the CLI's default) is an Optuna JournalStorage with a JournalFileBackend: an append-only log, safe for
several processes on one machine or a shared file system, and faster than SQLite for many small writes; its lock is
`tstack.nas.journal.JournalLock`, which a killed process cannot leave stuck. ``sqlite:///file.db`` and
``postgresql://user:pass@host/db`` (several machines; needs a driver such as psycopg2) go to Optuna's RDBStorage;
``memory`` keeps the study in this process only.

The study's user attr ``tstack`` records what it searches (space, hardware, sequence length, phase, algorithm, ...);
reopening it with other settings is refused, except for how long it runs.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tstack.nas.pricing import PriceTable
from tstack.nas.search_config import SearchConfig, SearchError
from tstack.nas.space import SearchSpace

if TYPE_CHECKING:
    import optuna

STUDY_FORMAT = 1
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
# settings a resumed study may change: how long it runs
_EXTENSIBLE = frozenset({"iterations", "max_evaluations"})


def redact(storage: object) -> str:
    """A storage URL without its password, fit for messages and reports."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", str(storage))


def _is_url(text: str) -> bool:
    scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else ""
    return scheme in _RDB_SCHEMES


def check_storage(storage: object) -> None:
    """Refuse a storage that `open_storage` would refuse for its form alone (an unknown URL scheme, a directory),
    without touching the disk or a database: a search checks this before anything else, so bad input leaves no
    file behind."""
    text = str(storage)
    if text == "memory" or not isinstance(storage, str | Path):
        return
    if "://" in text and not _is_url(text):
        raise SearchError(
            f"unsupported storage {redact(text)!r}; use a journal file path, sqlite:///FILE, postgresql://... or memory"
        )
    if not _is_url(text) and Path(text).is_dir():
        raise SearchError(f"storage {text} is a directory; give a file path such as {Path(text) / 'study.journal'}")


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
    check_storage(storage)
    text = str(storage)
    if text == "memory":
        return optuna.storages.InMemoryStorage()
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
def quiet_optuna() -> Iterator[None]:
    """Library code never prints: silence Optuna's per-trial log lines for the duration of a call."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def study_meta(space: SearchSpace, table: PriceTable, config: SearchConfig, objective_name: str) -> dict[str, Any]:
    """What a study searches, stored with it so that a resume with other settings is refused."""
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


def open_study(
    storage: str | Path | optuna.storages.BaseStorage,
    study_name: str,
    meta: Mapping[str, Any],
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Create or reopen the study; refuse one that was created to search something else."""
    import optuna

    store = open_storage(storage)
    with quiet_optuna():
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
