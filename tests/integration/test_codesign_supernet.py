"""`tstack codesign --perplexity supernet`: every candidate's perplexity is its sub-network's measured held-out
perplexity of a trained supernet (a tiny one, trained here for a few steps), each shape is measured once, the limit
follows from the supernet's own largest shape, and the objective survives pickling (Ray ships it)."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_codesign_search import HW_SPACE, TINY, linear_area_mm2, run_codesign_cli

pytest.importorskip("optuna")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """(supernet checkpoint, corpus file, folder with the space files): TINY's supernet, 6 steps on an excerpt."""
    from tstack.nas.data import load_corpus
    from tstack.nas.train import TrainConfig, train_supernet
    from tstack.spec.nas_space import load_space

    folder = tmp_path_factory.mktemp("supernet")
    full = load_corpus(None)
    text = folder / "excerpt.txt"
    text.write_text(full.train_text[:20_000] + "\n\n" + full.valid_text[:3_000], encoding="utf-8")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    (folder / "small.yaml").write_text(yaml.safe_dump(HW_SPACE))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig(steps=6, batch_size=4, lr_peak=3e-3, checkpoint_interval_steps=6)
        ckpt = train_supernet(load_space(str(folder / "tiny.yaml")), load_corpus(text), folder / "run", config)
    finally:
        torch.set_num_threads(threads)
    yield ckpt, text, folder


def _codesign(*args: str) -> tuple[int, str, str]:
    result = run_codesign_cli(["codesign", *args])
    return result.exit_code, result.stdout, result.stderr


def _measured(ckpt: Path, corpus: Path) -> Any:
    from tstack.nas.data import load_corpus
    from tstack.nas.evaluate import PerplexityEvaluator

    return PerplexityEvaluator(ckpt, load_corpus(corpus), threads=1)


def test_codesign_with_a_supernet_scores_each_candidate_by_its_measured_perplexity(
    trained: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tstack.nas.evaluate as nas_evaluate

    ckpt, corpus, folder = trained
    measured: list[str] = []
    real = nas_evaluate.mean_nll

    def counting(net: Any, arch: Any, *rest: Any) -> Any:
        measured.append(arch.key)
        return real(net, arch, *rest)

    monkeypatch.setattr(nas_evaluate, "mean_nll", counting)
    code, out, err = _codesign(
        "--perplexity", "supernet", "--supernet", str(ckpt), "--corpus", str(corpus), "--threads", "1",
        "--hardware-space", str(folder / "small.yaml"), "--area-budget", "1.0", "--strategy", "alternating",
        "--evaluations", "12", "--batch", "3", "--storage", "memory", "--json",
    )  # fmt: skip
    assert code == 0, err
    measured_by_search = list(measured)
    doc = json.loads(out)
    assert doc["sources"]["perplexity"].startswith("measured") and str(ckpt.resolve()) in doc["sources"]["perplexity"]
    assert doc["settings"]["shape_space"]["name"] == "tiny"  # the checkpoint's space: no --space given
    reference = _measured(ckpt, corpus)
    space = reference.space
    for c in doc["candidates"]:
        from tstack.nas.space import Architecture

        assert c["perplexity"] == pytest.approx(reference.perplexity(Architecture.from_key(c["arch"])), rel=1e-9)
    # the default limit: 1.03 x the supernet's largest shape, measured
    assert doc["settings"]["perplexity_limit"] == pytest.approx(1.03 * reference.perplexity(space.largest()))
    # each shape measured once, however often it was proposed, with however many designs
    assert len(measured_by_search) == len(set(measured_by_search))
    assert set(measured_by_search) == {c["arch"] for c in doc["candidates"]} | {space.largest().key}
    assert len({c["arch"] for c in doc["candidates"]}) < len(doc["candidates"])  # so some shape was proposed again
    assert doc["counts"]["proposals"] == 12


def test_a_perplexity_factor_and_a_limit_set_the_limit(trained: tuple[Path, Path, Path]) -> None:
    ckpt, corpus, folder = trained
    base = ["--perplexity", "supernet", "--supernet", str(ckpt), "--corpus", str(corpus), "--threads", "1",
            "--hardware-space", str(folder / "small.yaml"), "--area-budget", "1.0", "--strategy", "joint",
            "--evaluations", "4", "--storage", "memory", "--json"]  # fmt: skip
    largest = _measured(ckpt, corpus)
    ppl = largest.perplexity(largest.space.largest())
    code, out, err = _codesign(*base, "--perplexity-factor", "1.2")
    assert code == 0, err
    assert json.loads(out)["settings"]["perplexity_limit"] == pytest.approx(1.2 * ppl)
    code, out, err = _codesign(*base, "--perplexity-limit", str(round(ppl * 2)))
    assert code == 0, err
    assert json.loads(out)["settings"]["perplexity_limit"] == round(ppl * 2)
    code, _, err = _codesign(*base, "--perplexity-factor", "0.5")  # below the largest shape's: nothing can meet it
    assert code == 2 and "no shape meets the perplexity limit" in err
    code, _, err = _codesign(*base, "--space", "cpu")  # not the space it was trained on
    assert code == 2 and "was trained on shape space 'tiny'" in err


def test_the_supernet_objective_pickles_and_measures_the_same_in_another_evaluator(
    trained: tuple[Path, Path, Path],
) -> None:
    from tstack.codesign import Candidate, CodesignProblem, Evaluator, Metric
    from tstack.nas.search import SupernetObjective
    from tstack.spec.codesign import load_hardware_space

    ckpt, corpus, folder = trained
    objective = SupernetObjective(ckpt, corpus, None, 1)
    shapes = objective.load().space
    problem = CodesignProblem(shapes, load_hardware_space(folder / "small.yaml"), linear_area_mm2, objective, 1.0,
                              1e6, Metric.EDP)  # fmt: skip
    candidate = Candidate(problem.hardware.base_params(), shapes.smallest())
    here = Evaluator(problem, direct=True)(candidate)
    shipped = pickle.loads(pickle.dumps(Evaluator(problem, direct=True)))  # as Ray ships it: paths, no weights
    assert shipped.problem.perplexity._evaluator is None
    assert shipped(candidate) == here
