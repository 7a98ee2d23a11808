"""NAS search machinery on a tiny space: the algorithms, resume after SIGKILL, two workers on one study, Ray.

The objective is the parameter-count surrogate (cheap, deterministic) with the real pricing; whether evolution
beats random search is a benchmark question (benchmarks/bench_nas_search.py), not a test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tstack.api import price_table as build_price_table
from tstack.errors import SpecError, TstackError
from tstack.nas.pricing import PriceTable
from tstack.nas.proxy import ProxyPerplexity
from tstack.nas.search import (
    SearchConfig,
    SearchError,
    load_results,
    open_storage,
    run_search,
)
from tstack.nas.space import Architecture, SearchSpace, space_from_dict

TINY: dict[str, Any] = {
    "name": "tiny",
    "layers": [1, 2, 3],
    "heads": [2, 4],
    "d_model": [32, 48, 64],
    "d_ff": [64, 128, 192],
    "head_dim": 16,
    "seq_len": 32,
    "vocab_size": 100,
}


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return space_from_dict(TINY)


@pytest.fixture(scope="module")
def table(space: SearchSpace, tmp_path_factory: pytest.TempPathFactory) -> PriceTable:
    return build_price_table(space, cache_dir=tmp_path_factory.mktemp("prices"))


def _keys(storage: str | Path, study: str = "tstack-nas") -> set[str]:
    return {e.point.key for e in load_results(storage, study).evaluated}


def test_evolution_follows_the_paper_loop(space: SearchSpace, table: PriceTable) -> None:
    cfg = SearchConfig(population=8, iterations=5, seed=3)
    calls: list[str] = []

    def objective(arch: Architecture) -> float:
        calls.append(arch.key)
        return ProxyPerplexity(space)(arch)

    res = run_search(space, table, objective, storage="memory", config=cfg)
    assert len(calls) == len(set(calls)) == res.n_evaluations  # no architecture evaluated twice
    assert res.baseline is not None and res.baseline.point.key == space.largest().key
    by_gen = Counter(e.generation for e in res.evaluated)
    assert sorted(by_gen) == list(range(5)) and by_gen[0] == 8
    assert all(n <= 8 for n in by_gen.values())
    gen_of = {e.point.key: e.generation for e in res.evaluated}
    for e in res.evaluated:
        assert e.role in ("baseline", "random", "child")
        if e.role == "child":
            assert e.generation is not None and e.generation > 0
    priced = table.price_many([e.arch for e in res.evaluated])
    assert [e.point.edp for e in res.evaluated] == pytest.approx(list(priced.edp), rel=1e-12)
    assert gen_of[space.largest().key] == 0
    front = res.front()
    assert front and all(f.point.perplexity <= front[-1].point.perplexity for f in front)


def test_same_seed_same_search_and_resume_extends(space: SearchSpace, table: PriceTable, tmp_path: Path) -> None:
    proxy = ProxyPerplexity(space)
    full = run_search(space, table, proxy, storage="memory", config=SearchConfig(population=8, iterations=4, seed=5))
    again = run_search(space, table, proxy, storage="memory", config=SearchConfig(population=8, iterations=4, seed=5))
    assert [e.point.key for e in full.evaluated] == [e.point.key for e in again.evaluated]
    other = run_search(space, table, proxy, storage="memory", config=SearchConfig(population=8, iterations=4, seed=6))
    assert {e.point.key for e in other.evaluated} != {e.point.key for e in full.evaluated}
    # a study run for 2 iterations and then resumed to 4 ends where a straight 4-iteration run ends
    journal = tmp_path / "study.journal"
    run_search(space, table, proxy, storage=journal, config=SearchConfig(population=8, iterations=2, seed=5))
    resumed = run_search(space, table, proxy, storage=journal, config=SearchConfig(population=8, iterations=4, seed=5))
    assert [e.point.key for e in resumed.evaluated] == [e.point.key for e in full.evaluated]
    with pytest.raises(SearchError, match="created with algorithm='evolution'"):
        run_search(space, table, proxy, storage=journal, config=SearchConfig(algorithm="random", population=8))


@pytest.mark.parametrize("algorithm", ["nsga2", "random"])
def test_sampler_algorithms_spend_exactly_the_budget(space: SearchSpace, table: PriceTable, algorithm: str) -> None:
    calls: list[str] = []

    def objective(arch: Architecture) -> float:
        calls.append(arch.key)
        return ProxyPerplexity(space)(arch)

    cfg = SearchConfig(algorithm=algorithm, population=6, iterations=4, seed=1)
    res = run_search(space, table, objective, storage="memory", config=cfg)
    assert res.n_evaluations == len(calls) == len(set(calls)) == 24
    assert res.baseline is not None  # the largest architecture is always evaluated first


def test_failing_objective(space: SearchSpace, table: PriceTable, tmp_path: Path) -> None:
    proxy = ProxyPerplexity(space)

    def flaky(arch: Architecture) -> float:
        if arch.d_model == 48:
            raise ValueError("boom")
        return proxy(arch)

    res = run_search(space, table, flaky, storage="memory", config=SearchConfig(population=8, iterations=3, seed=2))
    assert res.n_failed > 0 and all(e.arch.d_model != 48 for e in res.evaluated)

    def broken(arch: Architecture) -> float:
        raise ValueError("always")

    with pytest.raises(SearchError, match="failed 5 times in a row"):
        run_search(space, table, broken, storage="memory", config=SearchConfig(population=8, iterations=3))

    # bad input (a TstackError) stops the search at once and hands the candidate back for the rerun
    journal = tmp_path / "s.journal"

    def missing_corpus(arch: Architecture) -> float:
        raise TstackError("corpus x does not exist")

    with pytest.raises(TstackError, match="corpus x"):
        run_search(space, table, missing_corpus, storage=journal, config=SearchConfig(population=8, iterations=2))
    res = run_search(space, table, proxy, storage=journal, config=SearchConfig(population=8, iterations=2))
    assert res.baseline is not None and res.n_evaluations == len(res.evaluated)


def test_a_dead_workers_trial_on_another_host_is_recovered(space: SearchSpace, table: PriceTable) -> None:
    import optuna

    storage = open_storage("memory")
    proxy = ProxyPerplexity(space)
    cfg = SearchConfig(population=6, iterations=2, seed=4, stale_after_s=0.2)
    first = SearchConfig(population=6, iterations=1, seed=4)
    run_search(space, table, proxy, storage=storage, study_name="s", config=first)
    study = optuna.load_study(study_name="s", storage=storage)
    # a worker elsewhere claimed an architecture and went silent
    arch = space.smallest()
    orphan = study.ask()
    orphan.set_user_attr("key", arch.key)
    orphan.set_user_attr("generation", 1)
    orphan.set_user_attr("worker", {"host": "elsewhere", "boot": "x", "pid": 1, "id": "other"})
    orphan.set_user_attr("heartbeat", time.time() - 60)
    res = run_search(space, table, proxy, storage=storage, study_name="s", config=cfg)
    assert study.trials[orphan.number].state is optuna.trial.TrialState.FAIL
    assert arch.key in {e.point.key for e in res.evaluated}


def test_storage_errors(space: SearchSpace, table: PriceTable, tmp_path: Path) -> None:
    with pytest.raises(SearchError, match=r"postgresql://nobody:\*\*\*@127\.0\.0\.1:1/x") as err:
        open_storage("postgresql://nobody:secret@127.0.0.1:1/x")
    assert "secret" not in str(err.value)
    with pytest.raises(SearchError, match="unsupported storage"):
        open_storage("redis://localhost/0")
    with pytest.raises(SearchError, match="is a directory"):
        open_storage(tmp_path)
    with pytest.raises(SearchError, match="does not exist"):  # a typo in `nas report --storage` creates nothing
        load_results(tmp_path / "typo.journal", "nope")
    assert not (tmp_path / "typo.journal").exists()
    open_storage(tmp_path / "empty.journal")
    with pytest.raises(SearchError, match="no study named 'nope'"):
        load_results(tmp_path / "empty.journal", "nope")
    with pytest.raises(SpecError, match="unknown search algorithm"):
        SearchConfig(algorithm="annealing")


def test_unreachable_ray_address_is_refused_quickly(space: SearchSpace, table: PriceTable) -> None:
    pytest.importorskip("ray")
    start = time.monotonic()
    with pytest.raises(SearchError, match=r"Ray at 127\.0\.0\.1:1 does not answer"):
        run_search(space, table, ProxyPerplexity(space), storage="memory", ray_address="127.0.0.1:1")
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("storage", ["new/study.journal", "sqlite:///{d}/new/study.db"], ids=["journal", "sqlite"])
@pytest.mark.parametrize("bad", ["ray-address", "other-space"])
def test_a_refused_search_leaves_no_storage_behind(
    space: SearchSpace, table: PriceTable, tmp_path: Path, storage: str, bad: str
) -> None:
    """Input refused after the storage was opened used to leave a new study file (a 692-byte journal for an
    unanswered --ray address); every check and Ray now come first."""
    if storage.startswith("sqlite"):
        (tmp_path / "new").mkdir()  # SQLite needs its folder; only the database file must not appear
    where = storage.format(d=tmp_path) if "{d}" in storage else str(tmp_path / storage)
    before = sorted(tmp_path.rglob("*"))
    if bad == "ray-address":
        with socket.socket() as s:  # a port nothing listens on: bound, then released
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(SearchError, match="Ray"):  # does not answer, or Ray is not installed
            run_search(space, table, ProxyPerplexity(space), storage=where, ray_address=f"127.0.0.1:{port}")
    else:
        other = space_from_dict({**TINY, "name": "other", "layers": [1, 2]})
        with pytest.raises(SpecError, match="price table was built for search space 'tiny'"):
            run_search(other, table, ProxyPerplexity(other), storage=where)
    assert sorted(tmp_path.rglob("*")) == before


class _Killed(BaseException):
    """Stands in for SIGKILL inside the planner: not an Exception, so nothing catches it."""


@pytest.mark.parametrize(("generation", "enqueued"), [(0, 3), (2, 0), (2, 1)], ids=["gen0-3", "gen2-0", "gen2-1"])
def test_a_plan_cut_short_by_a_crash_is_completed_on_resume(
    space: SearchSpace, table: PriceTable, monkeypatch: pytest.MonkeyPatch, generation: int, enqueued: int
) -> None:
    """A planner killed between two enqueues left a generation with fewer trials than its plan_size, and every
    resume waited for the rest forever (found by the SIGKILL test of `study`). The resume now completes the plan,
    re-derived from the trials before it, and ends where an uninterrupted search ends."""
    from tstack.nas.search_loop import SearchLoop

    cfg = SearchConfig(population=8, iterations=4, seed=5)
    proxy = ProxyPerplexity(space)
    reference = run_search(space, table, proxy, storage="memory", config=cfg)
    assert Counter(e.generation for e in reference.evaluated)[generation] > enqueued  # the kill lands in the plan
    storage = open_storage("memory")
    real = SearchLoop._enqueue
    calls = {"n": 0}

    def dies_planning(self: SearchLoop, arch: Architecture, attrs: dict[str, Any]) -> None:
        if attrs.get("generation") == generation:
            if calls["n"] == enqueued:
                raise _Killed
            calls["n"] += 1
        real(self, arch, attrs)

    monkeypatch.setattr(SearchLoop, "_enqueue", dies_planning)
    with pytest.raises(_Killed):
        run_search(space, table, proxy, storage=storage, config=cfg)
    monkeypatch.setattr(SearchLoop, "_enqueue", real)
    box: list[Any] = []
    resume = threading.Thread(
        target=lambda: box.append(run_search(space, table, proxy, storage=storage, config=cfg)), daemon=True
    )
    resume.start()
    resume.join(timeout=120)
    assert not resume.is_alive(), "the resumed search waits for a plan nobody will finish"
    resumed = box[0]
    assert sorted(e.point.key for e in resumed.evaluated) == sorted(e.point.key for e in reference.evaluated)
    assert Counter(e.generation for e in resumed.evaluated) == Counter(e.generation for e in reference.evaluated)
    assert resumed.n_evaluations == reference.n_evaluations


def test_search_module_keeps_its_public_names() -> None:
    """`nas/search.py` was split by job; what callers imported from it still comes from it."""
    from tstack.nas import search

    before_split = {
        "ALGORITHMS", "DEFAULT_STUDY", "STUDY_FORMAT", "Evaluated", "Objective", "SearchConfig", "SearchError",
        "SearchProgress", "StudyResults", "SupernetObjective", "connect_ray", "load_results", "open_storage",
        "open_study", "redact", "results_of", "run_search", "with_budget",
    }  # fmt: skip
    assert set(search.__all__) == before_split
    assert all(hasattr(search, name) for name in before_split)


# -- several processes ------------------------------------------------------------------------------------------
WORKER = """
import json, os, sys, time
from pathlib import Path
from tstack.nas.space import space_from_dict
from tstack.api import price_table as build_price_table
from tstack.nas.proxy import ProxyPerplexity
from tstack.nas.search import run_search, SearchConfig

args = json.loads(sys.argv[1])
space = space_from_dict(args["space"])
table = build_price_table(space, cache_dir=Path(args["cache"]))
proxy = ProxyPerplexity(space)
calls = Path(args["calls"])
count = 0

def log(what, key):
    with calls.open("a") as fh:
        fh.write(f"{what} {key} {os.getpid()}\\n")

def objective(arch):
    global count
    count += 1
    log("start", arch.key)
    if count == args.get("hang_at"):
        Path(args["marker"]).write_text("hung")
        time.sleep(600)
    time.sleep(args.get("sleep", 0.0))
    value = proxy(arch)
    log("end", arch.key)
    return value

Path(args["ready"] + str(os.getpid())).write_text("ready")
while not Path(args["go"]).exists():
    time.sleep(0.01)
run_search(space, table, objective, storage=args["storage"], config=SearchConfig(**args["config"]))
"""


def _start(tmp_path: Path, config: dict[str, Any], **extra: Any) -> subprocess.Popen[bytes]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    args = {
        "space": TINY,
        "cache": str(tmp_path / "prices"),
        "calls": str(tmp_path / "calls.log"),
        "storage": str(tmp_path / "study.journal"),
        "config": config,
        "marker": str(tmp_path / "hung"),
        "ready": str(tmp_path / "ready-"),
        "go": str(tmp_path / "go"),
        **extra,
    }
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, str(script), json.dumps(args)], env=env)


def _wait_for(path_glob: tuple[Path, str], n: int, timeout_s: float = 60) -> None:
    folder, pattern = path_glob
    end = time.monotonic() + timeout_s
    while len(list(folder.glob(pattern))) < n:
        assert time.monotonic() < end, f"timed out waiting for {pattern}"
        time.sleep(0.02)


def _calls(tmp_path: Path) -> tuple[Counter[str], Counter[str], set[str]]:
    starts: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    pids: set[str] = set()
    for line in (tmp_path / "calls.log").read_text().splitlines():
        what, key, pid = line.split()
        (starts if what == "start" else ends)[key] += 1
        if what == "end":
            pids.add(pid)
    return starts, ends, pids


def _reference(space: SearchSpace, table: PriceTable, config: dict[str, Any]) -> set[str]:
    res = run_search(space, table, ProxyPerplexity(space), storage="memory", config=SearchConfig(**config))
    return {e.point.key for e in res.evaluated}


def test_sigkill_mid_evaluation_loses_nothing_and_repeats_nothing(
    space: SearchSpace, table: PriceTable, tmp_path: Path
) -> None:
    config = {"population": 8, "iterations": 4, "seed": 11}
    first = _start(tmp_path, config, hang_at=11)  # generation 1: after the initial population reached storage
    _wait_for((tmp_path, "ready-*"), 1)
    (tmp_path / "go").write_text("")
    _wait_for((tmp_path, "hung"), 1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    _, ends_before, _ = _calls(tmp_path)
    stored_before = _keys(tmp_path / "study.journal")
    assert stored_before == set(ends_before) and len(stored_before) == 10

    second = _start(tmp_path, config)
    assert second.wait(timeout=120) == 0
    starts, ends, _ = _calls(tmp_path)
    assert max(ends.values()) == 1  # no evaluation whose result was stored ran again
    assert [k for k, n in starts.items() if n > 1] == [k for k, n in starts.items() if ends[k] == 1 and n == 2]
    assert sum(starts.values()) == sum(ends.values()) + 1  # only the call the kill interrupted was redone
    results = load_results(tmp_path / "study.journal")
    assert results.n_failed == 1 and results.n_evaluations == len(ends)
    assert {e.point.key for e in results.evaluated} == set(ends) == _reference(space, table, config)


@pytest.mark.parametrize(
    "config",
    [
        {"population": 8, "iterations": 3, "seed": 7},
        {"algorithm": "random", "population": 4, "iterations": 4, "seed": 7},
    ],
    ids=["evolution", "random-same-seed"],
)
def test_two_workers_share_one_study(
    space: SearchSpace, table: PriceTable, tmp_path: Path, config: dict[str, Any]
) -> None:
    workers = [_start(tmp_path, config, sleep=0.02) for _ in range(2)]
    _wait_for((tmp_path, "ready-*"), 2)
    (tmp_path / "go").write_text("")
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    _, ends, pids = _calls(tmp_path)
    assert max(ends.values()) == 1  # no architecture evaluated twice
    assert len(pids) == 2  # both workers did evaluations
    results = load_results(tmp_path / "study.journal")
    assert {e.point.key for e in results.evaluated} == set(ends)
    assert results.n_evaluations == len(ends)
    if config.get("algorithm", "evolution") == "evolution":
        # the plan lives in storage, so two workers find exactly what one finds
        assert set(ends) == _reference(space, table, config)
    else:
        assert len(ends) == 16  # the budget, although both samplers proposed the same sequence


@pytest.mark.slow
def test_search_on_a_local_ray_instance(space: SearchSpace, table: PriceTable, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    config = {"population": 6, "iterations": 3, "seed": 2}
    res = run_search(
        space,
        table,
        ProxyPerplexity(space),
        storage="memory",
        config=SearchConfig(**config),
        ray_address="local",
        ray_num_cpus=2,
    )
    assert {e.point.key for e in res.evaluated} == _reference(space, table, config)
    assert res.n_evaluations == len(res.evaluated)


def test_importing_tstack_nas_stays_light() -> None:
    code = (
        "import sys, tstack.nas as nas; nas.space_from_dict; nas.build_price_table; "
        "heavy = {'torch', 'optuna', 'ray'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
