"""The study's co-design experiment inside the study: all three strategies at one budget, perplexity measured on the
NAS experiment's supernet when that experiment finished in the study and the proxy (with the reason) when it did
not, and a cache key that follows the supernet."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.study.conftest import TINY, tiny_config
from tstack.codesign.evaluate import SUPERNET_FACTOR
from tstack.errors import TstackError
from tstack.report.codesign_section import codesign_section
from tstack.studies import codesign, nas
from tstack.studies.runner import run_study

pytest.importorskip("optuna")
STRATEGIES = ["sequential", "joint", "alternating"]


def _check_strategies(d: dict[str, Any]) -> None:
    assert list(d["strategies"]) == STRATEGIES
    assert d["evaluations"] == TINY.codesign_evaluations
    for s in d["strategies"].values():
        assert s["proposals"] == d["evaluations"]  # the same budget for each
        assert all(p["perplexity"] <= d["perplexity_limit"] for p in s["front"])
    labels = [p["label"] for p in d["points"]]
    assert labels[0] == "gemmini-ibert"
    assert set(labels[1:]) <= {f"{s} optimum" for s in STRATEGIES}
    html = codesign_section(d)
    assert all(f"<td>{s}</td>" in html for s in STRATEGIES)


def test_the_study_measures_perplexity_on_its_own_nas_supernet(fast_study: tuple[dict[str, Any], Path]) -> None:
    doc, out = fast_study
    if "nas" not in doc["experiments"]:
        pytest.skip("torch is not installed: the study ran no NAS experiment")
    assert doc["experiments"]["nas"]["error"] is None and doc["experiments"]["codesign"]["error"] is None
    d = doc["experiments"]["codesign"]["data"]
    _check_strategies(d)
    assert d["perplexity_source"] == "measured" and d["sources"]["perplexity"].startswith("measured")
    supernet = d["supernet"]
    assert supernet["step"] == doc["experiments"]["nas"]["data"]["train_steps"] == TINY.nas_train_steps
    # the same measurement as the NAS experiment's (same checkpoint, held-out tokens, threads): its baseline is the
    # largest shape, and the limit is tstack codesign's rule on it
    assert supernet["largest_perplexity"] == doc["experiments"]["nas"]["data"]["baseline"]["perplexity"]
    assert d["perplexity_limit"] == pytest.approx(SUPERNET_FACTOR * supernet["largest_perplexity"])
    assert d["points"][0]["perplexity"] == supernet["largest_perplexity"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "perplexity (measured)" in html


def test_without_the_nas_experiment_the_study_says_it_used_the_proxy(tmp_path: Path) -> None:
    doc = run_study(tiny_config(), tmp_path, only=["codesign"])
    d = doc["experiments"]["codesign"]["data"]
    _check_strategies(d)
    assert d["perplexity_source"] == "proxy" and d["supernet"] is None
    assert d["sources"]["perplexity"].startswith("proxy") and "--only" in d["sources"]["perplexity"]
    assert d["perplexity_limit"] == codesign.PROXY_LIMIT
    html = codesign_section(d)
    assert "perplexity (proxy)" in html and "not a measurement" in html


def test_a_failed_nas_experiment_falls_back_to_the_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failed(config: Any, progress: Any, work_dir: Path) -> Any:
        raise TstackError("no torch here")

    monkeypatch.setattr(nas, "run", failed)
    monkeypatch.setattr(codesign, "run", lambda config, progress, work_dir, *, upstream: {"upstream": dict(upstream)})
    doc = run_study(tiny_config(), tmp_path, only=["nas", "codesign"])
    assert doc["experiments"]["nas"]["error"] == "no torch here"
    assert doc["experiments"]["codesign"]["data"] == {"upstream": {"nas": None}}
    assert codesign.perplexity_for(tiny_config(), {"nas": None}).source.endswith("the study's nas experiment failed")


def test_a_changed_supernet_reruns_the_codesign_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner keys the experiment by what `upstream_key` says it read; the same input is taken from the cache."""
    seen: list[Any] = []
    identity = {"perplexity": "measured", "supernet": "a"}
    monkeypatch.setattr(nas, "run", lambda config, progress, work_dir: {"ok": True})
    monkeypatch.setattr(codesign, "upstream_key", lambda config, upstream: dict(identity))

    def run(config: Any, progress: Any, work_dir: Path, *, upstream: Any) -> dict[str, Any]:
        seen.append(dict(upstream))
        return {"identity": dict(identity)}

    monkeypatch.setattr(codesign, "run", run)
    first = run_study(tiny_config(), tmp_path, only=["nas", "codesign"])
    assert list(seen[0]) == ["nas"] and seen[0]["nas"].parent == tmp_path / "work" / "nas"  # its work folder
    again = run_study(tiny_config(), tmp_path, only=["nas", "codesign"], resume=True)
    assert again["experiments"]["codesign"]["cached"] and len(seen) == 1
    identity["supernet"] = "b"  # the NAS experiment's supernet changed
    third = run_study(tiny_config(), tmp_path, only=["nas", "codesign"], resume=True)
    assert not third["experiments"]["codesign"]["cached"] and len(seen) == 2
    assert first["experiments"]["codesign"]["data"] != third["experiments"]["codesign"]["data"]


def test_the_supernet_digest_follows_the_weights_not_the_file(
    fast_study: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    doc, out = fast_study
    if "nas" not in doc["experiments"]:
        pytest.skip("torch is not installed: the study ran no NAS experiment")
    import torch

    from tstack.nas.train import CHECKPOINT_NAME

    (nas_dir,) = (out / "work" / "nas").iterdir()
    key = codesign.upstream_key(tiny_config(), {"nas": nas_dir})
    assert key["perplexity"] == "measured"
    assert key["supernet"] == doc["experiments"]["codesign"]["data"]["supernet"]["weights_sha256"]
    copy = tmp_path / "nas"
    shutil.copytree(nas_dir / nas.SUPERNET_DIR, copy / nas.SUPERNET_DIR)
    path = copy / nas.SUPERNET_DIR / CHECKPOINT_NAME
    ckpt = torch.load(path, weights_only=True)
    ckpt["elapsed_s"] += 1.0  # another file, the same weights: the same supernet
    torch.save(ckpt, path)
    assert codesign.upstream_key(tiny_config(), {"nas": copy}) == key
    name = sorted(ckpt["model"])[0]
    ckpt["model"][name] = ckpt["model"][name] + 1e-3  # other weights: another supernet
    torch.save(ckpt, path)
    assert codesign.upstream_key(tiny_config(), {"nas": copy})["supernet"] != key["supernet"]
    path.unlink()
    assert codesign.upstream_key(tiny_config(), {"nas": copy})["perplexity"] == "proxy"
