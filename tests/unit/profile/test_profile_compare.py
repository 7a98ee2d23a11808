"""Calibration microbenchmarks and the prediction-vs-measurement comparison."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="profiling needs the torch extra")
pytest.importorskip("transformers", reason="profiling needs the transformers extra")

from tests.unit.workload.test_profile_models import tiny_bert
from tstack import analyze, load_device
from tstack.errors import SpecError
from tstack.profile import MATMUL_CLASSES, ProfileResult, profile
from tstack.profile.calibrate import Calibration, calibrate, write_device
from tstack.profile.compare import compare
from tstack.workload import Phase
from tstack.workload.roofline import RooflineDevice

_RESULT: list[ProfileResult] = []


def _result() -> ProfileResult:
    if not _RESULT:
        _RESULT.extend(profile(tiny_bert(), (64,), threads=1, repeats=2, rounds=2))
    return _RESULT[0]


def _tiny_calibration() -> Calibration:
    return calibrate(threads=1, matmul_n=128, attention_seq=64, heads=2, copy_bytes=2**20, repeats=2)


def test_calibration_measures_positive_rates_and_round_trips_as_a_device(tmp_path: Path) -> None:
    cal = _tiny_calibration()
    assert cal.threads == 1
    assert cal.matmul_flops_per_s > 1e8  # any CPU does 0.1 GFLOP/s
    assert cal.mem_bandwidth_bytes_per_s > 1e8
    assert cal.attention_matmul_flops_per_s > 1e8
    path = write_device(cal, tmp_path / "dev" / "me.yaml")
    dev = load_device(path)
    assert dev.peak_at(32) == pytest.approx(cal.matmul_flops_per_s, rel=1e-9)
    assert dev.mem_bandwidth_bytes_per_s == pytest.approx(cal.mem_bandwidth_bytes_per_s, rel=1e-9)
    assert not list((tmp_path / "dev").glob("*.tmp"))
    with pytest.raises(SpecError, match=r"\.yaml"):
        write_device(cal, tmp_path / "me.txt")


def test_compute_bound_prediction_is_the_flop_share_of_the_analysis() -> None:
    r = _result()
    # infinite bandwidth: every op is compute-bound, so predicted shares are FLOP shares of the workload layer
    dev = RooflineDevice("flops-only", ((32, 1e11),), 1e30)
    cmp = compare(r, device=dev)
    (a,) = analyze(r.model, r.seq_len, phase=r.phase, bits=32).results
    flops = {str(k): v.flops for k, v in a.by_class().items()}
    total = sum(flops.values())
    for c in MATMUL_CLASSES:
        assert cmp.of(c).predicted_share == pytest.approx(flops[c] / total)
        assert cmp.of(c).predicted_s == pytest.approx(flops[c] / 1e11)
        assert cmp.of(c).measured_s == pytest.approx(r.time_s(c))
    assert sum(c.predicted_share for c in cmp.classes) == pytest.approx(1.0)
    assert sum(c.measured_share for c in cmp.classes) == pytest.approx(1.0)
    assert cmp.method == "roofline"


def test_calibrated_model_changes_only_the_act_to_act_matmuls() -> None:
    r = _result()
    cal = dataclasses.replace(
        _tiny_calibration(),
        matmul_flops_per_s=1e11,
        attention_matmul_flops_per_s=1e10,
        mem_bandwidth_bytes_per_s=1e30,
        softmax_elements_per_s=None,  # refinements 2 and 3 off: tested below
        scale_elements_per_s=None,
    )
    plain = compare(r, device=cal.to_device())
    refined = compare(r, calibration=cal)
    assert refined.method == "calibrated"
    assert refined.of("mha_act").predicted_s == pytest.approx(10 * plain.of("mha_act").predicted_s)
    for c in ("mha_proj", "ffn_proj", "softmax", "norm"):
        assert refined.of(c).predicted_s == pytest.approx(plain.of(c).predicted_s)


def test_matmul_classes_measured_and_predicted_agree_roughly_on_a_small_encoder() -> None:
    r = _result()
    cmp = compare(r, calibration=_tiny_calibration())
    # the prediction ranks FFN above the act-to-act matmuls, as the measurement does
    assert cmp.of("ffn_proj").predicted_share > cmp.of("mha_act").predicted_share
    assert cmp.of("ffn_proj").measured_share > cmp.of("mha_act").measured_share


def test_a_gpu_calibration_gets_the_plain_roofline_of_its_rates() -> None:
    r = _result()
    cpu = Calibration("c", "cpu", 1, 1e11, 1e9, 1e10, 128, 64, 2**20)
    gpu = dataclasses.replace(cpu, device="cuda")
    assert compare(r, calibration=cpu).method == "calibrated"
    on_gpu = compare(r, calibration=gpu)
    plain = compare(r, device=gpu.to_device())
    assert on_gpu.method == "roofline"
    assert [c.predicted_s for c in on_gpu.classes] == [c.predicted_s for c in plain.classes]
    # the CPU refinement slows act-to-act down to the (here 100x lower) attention-matmul rate
    assert compare(r, calibration=cpu).of("mha_act").predicted_s > on_gpu.of("mha_act").predicted_s


def test_calibrated_softmax_and_score_scaling_come_from_their_measured_rates() -> None:
    r = _result()
    base = Calibration("c", "cpu", 1, 1e11, 1e10, 1e10, 128, 64, 2**20)
    slow = dataclasses.replace(base, softmax_elements_per_s=1e6, scale_elements_per_s=2e6)
    plain, refined = compare(r, calibration=base), compare(r, calibration=slow)
    (a,) = analyze(r.model, r.seq_len, phase=r.phase, bits=32).results
    spec = r.model
    scores = spec.n_layers * spec.heads[0] * r.seq_len**2 * r.batch  # one heads x l x l score tensor per layer
    assert refined.of("softmax").predicted_s == pytest.approx(scores / 1e6)
    extra = refined.of("residual").predicted_s - plain.of("residual").predicted_s
    assert extra == pytest.approx(scores / 2e6)
    for c in MATMUL_CLASSES:  # untouched
        assert refined.of(c).predicted_s == pytest.approx(plain.of(c).predicted_s)
    assert a.total.flops > 0


def test_calibration_measures_softmax_and_scaling_rates() -> None:
    cal = _tiny_calibration()
    assert cal.softmax_elements_per_s is not None and cal.softmax_elements_per_s > 1e6
    assert cal.scale_elements_per_s is not None and cal.scale_elements_per_s > 1e6
    assert "softmax" in cal.describe()


def test_attention_rates_are_measured_at_the_profiled_length() -> None:
    from tstack.profile.compare import calibration_for

    r = _result()
    base = dataclasses.replace(_tiny_calibration(), attention_seq=8)  # as if measured at another length
    at_l = calibration_for(r, base)
    assert at_l.attention_seq == r.seq_len != base.attention_seq
    assert at_l.matmul_flops_per_s == base.matmul_flops_per_s  # only the attention-shaped rates are re-measured
    assert at_l.softmax_elements_per_s is not None and at_l.softmax_elements_per_s > 1e6
    assert compare(r, calibration=at_l).calibration == at_l
    assert calibration_for(dataclasses.replace(r, phase=Phase.GENERATE), base) is base
    on_gpu = dataclasses.replace(base, device="cuda")
    assert calibration_for(r, on_gpu) is on_gpu
