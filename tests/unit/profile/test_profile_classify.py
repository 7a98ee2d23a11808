"""Classification rules, and real profiles of small models: coverage, shares and the paper's robust findings."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("torch", reason="profiling needs the torch extra")
pytest.importorskip("transformers", reason="profiling needs the transformers extra")
import torch

from tests.unit.workload.test_profile_models import tiny_bert, tiny_gpt2, tiny_llama
from tstack.errors import SpecError, WorkloadError
from tstack.profile import MEASURED_CLASSES, DeviceUnavailableError, ProfileResult, Scope, classify_op, profile
from tstack.workload import Phase


@pytest.mark.parametrize(
    ("name", "scope", "shapes", "expected"),
    [
        ("aten::addmm", Scope.MHA_PROJ, [[768], [128, 768], [768, 768]], "mha_proj"),
        ("aten::linear", Scope.FFN_PROJ, [[128, 768], [3072, 768]], "ffn_proj"),
        ("aten::matmul", Scope.ATTN, [[1, 12, 128, 64], [1, 12, 64, 128]], "mha_act"),
        ("aten::matmul", Scope.ATTN, [[128, 768], [768, 768]], "unclassified"),  # an unlabelled projection
        ("aten::softmax", Scope.ATTN, [[1, 12, 128, 128]], "softmax"),
        ("aten::mul", Scope.ATTN, [[1, 12, 128, 128], []], "residual"),
        ("aten::layer_norm", Scope.NORM, [[1, 128, 768]], "norm"),
        ("aten::rsqrt", Scope.NORM, [[1, 128, 1]], "norm"),
        ("aten::tanh", Scope.ACTIVATION, [[1, 128, 3072]], "activation"),
        ("aten::mul", Scope.MLP, [[1, 128, 3072], [1, 128, 3072]], "activation"),
        ("aten::add", Scope.BLOCK, [[1, 128, 768], [1, 128, 768]], "residual"),
        ("aten::gelu", Scope.BLOCK, [[1, 128, 768]], "unclassified"),
        ("aten::cat", Scope.ATTN, [[1, 12, 7, 64], [1, 12, 1, 64]], "data_movement"),
        ("aten::embedding", Scope.EMBED, [[30522, 768], [1, 128]], "other"),
        ("aten::addmm", None, [[128, 768]], "unclassified"),
        ("aten::softmax", Scope.MHA_PROJ, [[1, 128]], "unclassified"),
    ],
)
def test_classification_rules(name: str, scope: Scope | None, shapes: list[list[int]], expected: str) -> None:
    assert classify_op(name, None if scope is None else str(scope), shapes) == expected


_CACHE: dict[str, tuple[ProfileResult, ...]] = {}


def _profiled(key: str) -> tuple[ProfileResult, ...]:
    if key not in _CACHE:
        if key == "bert":
            _CACHE[key] = profile(tiny_bert(), (32, 384), threads=1, repeats=3, rounds=3)
        elif key == "bert-128":  # same width as GPT-2's, for the generate-vs-encoder comparison
            _CACHE[key] = profile(tiny_bert(), (32,), threads=1, repeats=3, rounds=2)
        elif key == "gpt2":
            _CACHE[key] = profile(tiny_gpt2(), (32,), phase=Phase.GENERATE, threads=1, repeats=3, rounds=2)
        else:
            _CACHE[key] = profile(tiny_llama(), (24,), phase=Phase.GENERATE, threads=1, repeats=3, rounds=2)
    return _CACHE[key]


@pytest.mark.parametrize("key", ["bert", "gpt2", "llama"])
def test_classified_time_covers_the_profile_and_shares_sum_to_one(key: str) -> None:
    for r in _profiled(key):
        shares = r.shares()
        assert set(shares) == set(MEASURED_CLASSES)
        assert sum(shares.values()) == pytest.approx(1.0)
        assert r.coverage >= 0.95, [(o.name, o.scope, o.shapes) for o in r.unclassified()]
        for cls in ("mha_proj", "mha_act", "ffn_proj", "softmax", "norm", "activation", "residual"):
            assert shares[cls] > 0, cls
        assert r.threads == 1
        assert r.wall.min_s <= r.wall.median_s <= r.wall.max_s
        assert r.profiled_s > 0
        assert all(o.calls >= 1 for o in r.ops)


def test_act_to_act_share_grows_with_length_and_projections_dominate_short() -> None:
    short, long = _profiled("bert")
    s, lo = short.shares(), long.shares()
    assert lo["mha_act"] + lo["softmax"] > s["mha_act"] + s["softmax"]
    assert lo["mha_act"] > s["mha_act"]
    assert s["mha_proj"] + s["ffn_proj"] > 0.5
    assert s["ffn_proj"] > s["mha_act"]


def test_generation_is_much_slower_than_an_encoder_pass_of_the_same_length() -> None:
    (enc,) = _profiled("bert-128")
    (gen,) = _profiled("gpt2")
    assert enc.seq_len == gen.seq_len
    # similar FLOPs (same widths), but l weight-streaming one-token steps instead of one pass
    assert gen.wall.min_s > 3 * enc.wall.min_s


def test_generation_runs_token_by_token_with_a_growing_cache() -> None:
    (gen,) = _profiled("llama")
    qk = [o for o in gen.ops if o.op_class == "mha_act"]
    # the act-to-act matmuls see every context length 1..l: one distinct shape per step and matmul
    assert len({o.shapes for o in qk}) >= gen.seq_len
    proj = [o for o in gen.ops if o.op_class == "mha_proj" and o.name in ("aten::mm", "aten::addmm")]
    assert sum(o.calls for o in proj) == 4 * 2 * gen.seq_len  # q, k, v, o x 2 layers x l steps


def test_decode_measures_one_step_at_the_context_length_each_repeat() -> None:
    (dec,) = profile(tiny_llama(), (20,), phase=Phase.DECODE, threads=1, repeats=3, rounds=2)
    bmm = [o for o in dec.ops if o.op_class == "mha_act" and o.name == "aten::bmm"]
    # QK^T and PV of one query against 20 positions, once per layer (2), although the step ran 2 + 3 + 2 times
    assert sorted(o.shapes for o in bmm) == ["[[4, 1, 20], [4, 20, 64]]", "[[4, 1, 64], [4, 64, 20]]"]
    assert all(o.calls == 2 for o in bmm)
    assert dec.coverage >= 0.95


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(WorkloadError, match="encoder"):
        profile(tiny_bert(), (16,), phase=Phase.GENERATE)
    with pytest.raises(WorkloadError, match="decoder"):
        profile(tiny_gpt2(), (16,), phase=Phase.ENCODER)
    with pytest.raises(SpecError, match="--extend-positions"):
        profile(tiny_bert(positions=32), (64,))
    (r,) = profile(tiny_bert(positions=32), (40,), extend_positions=True, repeats=1, rounds=1, warmup=0)
    assert r.seq_len == 40
    with pytest.raises(WorkloadError, match="threads"):
        profile(tiny_bert(), (16,), threads=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(DeviceUnavailableError, match="no CUDA GPU") as info:
        profile(tiny_bert(), (16,), device="cuda")
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
@pytest.mark.parametrize(
    ("build", "phase"),
    [(tiny_bert, Phase.ENCODER), (tiny_gpt2, Phase.GENERATE), (tiny_gpt2, Phase.DECODE), (tiny_llama, Phase.GENERATE)],
)
def test_cuda_profile_same_code_path(build: Any, phase: Phase) -> None:
    """On a GPU the breakdown is kernel (device) time, through the same attribution as on the CPU."""
    (r,) = profile(build(), (64,), device="cuda", phase=phase, repeats=3, rounds=2)
    assert r.device == "cuda"
    assert r.coverage >= 0.95, r.unclassified()[:5]
    assert sum(r.shares().values()) == pytest.approx(1.0)
    for op_class in ("mha_proj", "mha_act", "ffn_proj", "softmax", "norm"):
        assert r.time_s(op_class) > 0, op_class
    # device time is GPU kernel time: far below the wall time of a launch-bound tiny model, never above it
    assert 0 < r.profiled_s < r.wall.median_s * 1.05


def test_fast_event_tree_matches_torch_function_events() -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    from transformers import DynamicCache

    from tstack.profile import build_torch_model
    from tstack.profile.classify import attribute, cpu_events, scoped
    from tstack.profile.measure import cache_kwarg

    model = build_torch_model(tiny_gpt2(n=1, d=128, heads=2, d_ff=256))
    ids = torch.arange(6).unsqueeze(0)
    with torch.inference_mode():
        cache = DynamicCache(config=model.module.config)
        with scoped(model), torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for t in range(6):
                model.module(input_ids=ids[:, t : t + 1], use_cache=True, **{cache_kwarg(model.module): cache})
    fast = {
        (o.name, o.scope, o.shapes, o.op_class): (o.time_s, o.calls)
        for o in attribute(cpu_events(prof), device_time=False, runs=1)
    }
    slow = {
        (o.name, o.scope, o.shapes, o.op_class): (o.time_s, o.calls)
        for o in attribute(prof.events(), device_time=False, runs=1)
    }
    assert fast.keys() == slow.keys()
    for key, (t, calls) in fast.items():
        assert calls == slow[key][1]
        assert t == pytest.approx(slow[key][0], abs=1e-6)  # both round to microseconds
