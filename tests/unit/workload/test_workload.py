"""Workload structure and counting: closed forms, phase consistency, GQA, heterogeneous layers, errors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tstack
from tstack.errors import SpecError, WorkloadError
from tstack.workload import (
    Convention,
    ModelSpec,
    OpClass,
    OpKind,
    Phase,
    analyze_workload,
    build_workload,
    kv_cache_bytes,
)


def _spec(**changes: object) -> ModelSpec:
    base = tstack.load_model("gpt2")
    assert isinstance(base, ModelSpec)
    return dataclasses.replace(base, **changes)


def _matmul_flops(spec: ModelSpec, seq: int, phase: Phase, batch: int = 1) -> float:
    wl = build_workload(spec, seq, phase=phase, batch=batch)
    return sum(c.flops for c in analyze_workload(spec, wl).ops if c.kind is OpKind.MATMUL)


def test_op_names_are_stable_and_ordered() -> None:
    wl = build_workload(tstack.load_model("bert-base"), 128)
    names = [op.name for op in wl]
    assert names[:3] == ["embed.tokens", "embed.add_types", "embed.add_positions"]
    i = names.index("layer3.attn.qk")
    assert names[i - 3 : i + 5] == [
        "layer3.attn.q",
        "layer3.attn.k",
        "layer3.attn.v",
        "layer3.attn.qk",
        "layer3.attn.softmax",
        "layer3.attn.sv",
        "layer3.attn.out",
        "layer3.attn.residual",
    ]
    assert names[-2:] == ["pooler.dense", "pooler.tanh"]


@pytest.mark.parametrize("seq", [1, 7, 128, 1000])
def test_encoder_matmul_flops_closed_form(seq: int) -> None:
    n, d, dff = 12, 768, 3072
    linear = 2 * seq * n * (4 * d * d + 2 * d * dff)
    attention = 2 * 2 * seq * seq * d * n
    pooler = 2 * d * d
    assert _matmul_flops(tstack.load_model("bert-base"), seq, Phase.ENCODER) == linear + attention + pooler


@settings(max_examples=25, deadline=None)
@given(
    seq=st.integers(1, 40),
    layers=st.integers(1, 3),
    heads=st.sampled_from([1, 2, 4]),
    group=st.sampled_from([1, 2]),
    batch=st.integers(1, 3),
    convention=st.sampled_from(list(Convention)),
)
def test_generate_equals_sum_of_decode_steps(
    seq: int, layers: int, heads: int, group: int, batch: int, convention: Convention
) -> None:
    """The closed-form sweep of GENERATE equals building and summing DECODE at every context length."""
    spec = _spec(
        n_layers=layers,
        heads=(heads * group,) * layers,
        kv_heads=(heads,) * layers,
        d_ff=(96,) * layers,
        d_model=64,
        head_dim=16,
    )
    gen = analyze_workload(spec, build_workload(spec, seq, phase=Phase.GENERATE, batch=batch), convention)
    flops = mops = 0.0
    for t in range(1, seq + 1):
        step = analyze_workload(spec, build_workload(spec, t, phase=Phase.DECODE, batch=batch), convention)
        flops += step.total.flops
        mops += step.total.mops_bytes
    assert gen.total.flops == pytest.approx(flops, rel=1e-12)
    assert gen.total.mops_bytes == pytest.approx(mops, rel=1e-12)


def test_flops_scale_linearly_with_batch() -> None:
    spec = tstack.load_model("bert-base")
    assert isinstance(spec, ModelSpec)
    one = analyze_workload(spec, build_workload(spec, 64)).total
    four = analyze_workload(spec, build_workload(spec, 64, batch=4)).total
    assert four.flops == pytest.approx(4 * one.flops, rel=1e-12)
    assert four.mops_bytes < 4 * one.mops_bytes  # weights are read once for the whole batch


def test_gqa_shrinks_kv_projections_and_cache_but_not_attention_flops() -> None:
    mha = _spec(kv_heads=(12,) * 12)
    gqa = _spec(kv_heads=(3,) * 12)
    by_mha = analyze_workload(mha, build_workload(mha, 256, phase=Phase.PREFILL)).by_class()
    by_gqa = analyze_workload(gqa, build_workload(gqa, 256, phase=Phase.PREFILL)).by_class()
    assert by_gqa[OpClass.MHA_ACT].flops == by_mha[OpClass.MHA_ACT].flops
    assert by_gqa[OpClass.MHA_ACT].mops_bytes < by_mha[OpClass.MHA_ACT].mops_bytes
    d = 768
    saved = 2 * 2 * 256 * d * (d - d // 4) * 12
    assert by_mha[OpClass.MHA_PROJ].flops - by_gqa[OpClass.MHA_PROJ].flops == saved
    assert kv_cache_bytes(gqa, 1024) * 4 == kv_cache_bytes(mha, 1024) == 2 * 12 * 1024 * 768


def test_heterogeneous_layers_sum_per_layer() -> None:
    spec = _spec(n_layers=2, heads=(12, 4), kv_heads=(12, 4), d_ff=(1024, 2048), head_dim=64)
    ffn = analyze_workload(spec, build_workload(spec, 10, phase=Phase.PREFILL)).by_class()[OpClass.FFN_PROJ]
    assert ffn.flops == 2 * 2 * 10 * 768 * (1024 + 2048)


def test_default_matches_paper_matmul_classes() -> None:
    """Projections equal the paper exactly; act-to-act FLOPs are 2 per MAC where the paper counts 2K - 1 per dot."""
    spec = tstack.load_model("bert-base")
    for seq in (128, 4096):
        wl = build_workload(spec, seq)
        ours = analyze_workload(spec, wl).by_group()
        paper = analyze_workload(spec, wl, Convention.PAPER_2023).by_group()
        for g in ("mha_proj", "ffn_proj"):
            assert ours[g] == paper[g]
        assert ours["mha_act"].mops_bytes == paper["mha_act"].mops_bytes
        dk, per_head_layer = 64, 12 * 12
        assert ours["mha_act"].flops == 2 * 2 * seq * seq * dk * per_head_layer
        assert paper["mha_act"].flops == (seq * seq * (2 * dk - 1) + seq * dk * (2 * seq - 1)) * per_head_layer


@pytest.mark.parametrize("model", ["bert-base", "bert-base-4heads", "bert-large", "gpt2"])
def test_default_totals_within_1pct_flops_10pct_mops_of_paper(model: str) -> None:
    a = tstack.analyze(model)
    p = tstack.analyze(model, convention="paper-2023")
    for ours, paper in zip(a.results, p.results, strict=True):
        assert abs(ours.total.flops / paper.total.flops - 1) < 0.01
        assert abs(ours.total.mops_bytes / paper.total.mops_bytes - 1) < 0.10


def test_resnet_fusion_removes_batchnorm_and_relu_traffic() -> None:
    spec = tstack.load_model("resnet50")
    unfused = analyze_workload(spec, build_workload(spec))
    fused = analyze_workload(spec, build_workload(spec, fused=True))
    assert sum(1 for c in unfused.ops if c.kind is OpKind.CONV) == 53
    assert sum(1 for c in unfused.ops if c.kind is OpKind.BATCHNORM) == 53
    assert not any(c.kind is OpKind.BATCHNORM for c in fused.ops)
    relu = [c for c in fused.ops if c.kind is OpKind.RELU]
    assert relu and all(c.mops_bytes == 0 and c.flops > 0 for c in relu)
    assert fused.total.arithmetic_intensity > unfused.total.arithmetic_intensity


def test_roofline_bounds() -> None:
    device = tstack.load_device("a100")
    enc = tstack.analyze("bert-base", [512], device=device)
    ffn = [o for o in enc.rooflines[0].ops if o.op_class is OpClass.FFN_PROJ]
    assert all(o.compute_bound for o in ffn)
    gen = tstack.analyze("gpt2", [128], device=device)
    assert gen.rooflines[0].compute_bound_share == 0.0  # decoding is memory-bound everywhere
    rl = gen.rooflines[0]
    assert rl.time_s == pytest.approx(sum(max(o.compute_s, o.memory_s) for o in rl.ops))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: tstack.analyze("bert-base", [0]), "sequence length must be a positive integer, got 0"),
        (lambda: tstack.analyze("bert-base", [-5]), "got -5"),
        (lambda: tstack.analyze("bert-base", [128], batch=0), "batch must be a positive integer"),
        (lambda: tstack.analyze("bert-base", [128], phase="generate"), "needs a decoder"),
        (lambda: tstack.analyze("gpt2", [128], phase="encoder"), "is a decoder"),
        (lambda: tstack.analyze("gpt2", [128], phase="sideways"), "unknown phase 'sideways'"),
        (lambda: tstack.analyze("vit-base", [128]), "drop --seq or pass --seq 197"),
        (
            lambda: tstack.analyze(
                "bert-base",
                [],
            ),
            "no sequence length given",
        ),
    ],
)
def test_bad_workload_requests(call: object, message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        call()  # type: ignore[operator]


def test_unknown_convention() -> None:
    with pytest.raises(SpecError, match="unknown counting convention 'paper'; choose one of: default, paper-2023"):
        tstack.analyze("bert-base", [128], convention="paper")
