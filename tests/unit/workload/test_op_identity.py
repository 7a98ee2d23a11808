"""Ops carry their identity as data (issue #17): layer, block and role agree with the printed label of every op of
every preset, and each place that used to parse a label (counting, the engine's requantization, the fusion study, NAS
pricing) decides exactly as the label parse did. The label parses live on here, in the tests, as the oracle."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tstack.errors import WorkloadError
from tstack.mapping.matmul.mappers import MapperName
from tstack.nas.pricing import _simulate_parts
from tstack.simulate import simulate_workload
from tstack.simulate.engine import handed_on_input
from tstack.simulate.fusion import PAIRS, pair_ops
from tstack.spec import load_model, preset_names
from tstack.spec.hardware import load_hardware
from tstack.workload import (
    Block,
    ModelSpec,
    Op,
    OpClass,
    OpKind,
    OpRole,
    Phase,
    ResNetSpec,
    Workload,
    build_workload,
)
from tstack.workload.identity import TRANSFORMER_LAYER_BLOCKS
from tstack.workload.model import AnyModelSpec
from tstack.workload.transformer import transformer_ops

A, F, E, H = Block.ATTENTION, Block.FFN, Block.EMBEDDING, Block.HEAD
R = OpRole
# label (after ``layer<i>.``) -> (block, role), written out independently of the builders' own tables
TRANSFORMER_LABELS: dict[str, tuple[Block, OpRole]] = {
    "embed.patches": (E, R.PATCHES),
    "embed.tokens": (E, R.TOKENS),
    "embed.add_types": (E, R.ADD_TYPES),
    "embed.add_positions": (E, R.ADD_POSITIONS),
    "embed.norm": (E, R.NORM),
    "project_in": (E, R.PROJECT_IN),
    "attn_norm": (A, R.NORM),
    "attn.q": (A, R.Q),
    "attn.k": (A, R.K),
    "attn.v": (A, R.V),
    "attn.rope": (A, R.ROPE),
    "attn.qk": (A, R.QK),
    "attn.softmax": (A, R.SOFTMAX),
    "attn.sv": (A, R.SV),
    "attn.out": (A, R.OUT),
    "attn.residual": (A, R.RESIDUAL),
    "ffn_norm": (F, R.NORM),
    "ffn.gate": (F, R.GATE),
    "ffn.up": (F, R.UP),
    "ffn.act": (F, R.ACTIVATION),
    "ffn.down": (F, R.DOWN),
    "ffn.residual": (F, R.RESIDUAL),
    "final_norm": (H, R.NORM),
    "project_out": (H, R.PROJECT_OUT),
    "pooler.dense": (H, R.POOLER),
    "pooler.tanh": (H, R.POOLER_ACTIVATION),
    "lm_head": (H, R.LM_HEAD),
}
RESNET_LABELS: dict[str, tuple[Block, OpRole]] = {
    "stem.conv": (Block.STEM, R.CONV),
    "stem.conv.bn": (Block.STEM, R.BATCHNORM),
    "stem.relu": (Block.STEM, R.RELU),
    "stem.maxpool": (Block.STEM, R.MAXPOOL),
    "head.avgpool": (H, R.AVGPOOL),
    "head.fc": (H, R.CLASSIFIER),
}
BOTTLENECK_ROLES: dict[str, OpRole] = {
    "conv1": R.CONV1,
    "conv1.bn": R.BN1,
    "relu1": R.RELU1,
    "conv2": R.CONV2,
    "conv2.bn": R.BN2,
    "relu2": R.RELU2,
    "conv3": R.CONV3,
    "conv3.bn": R.BN3,
    "downsample": R.DOWNSAMPLE,
    "downsample.bn": R.DOWNSAMPLE_BN,
    "residual": R.RESIDUAL,
    "relu3": R.RELU3,
}

Identity = tuple[int | None, Block, OpRole]


def _from_label(name: str, spec: AnyModelSpec) -> Identity:
    """The identity an op's label spells (the parse the library no longer does)."""
    if isinstance(spec, ResNetSpec):
        m = re.fullmatch(r"stage(\d+)\.block(\d+)\.(.+)", name)
        if m is None:
            return (None, *RESNET_LABELS[name])
        stage, block = int(m.group(1)) - 1, int(m.group(2))
        return sum(spec.blocks_per_stage[:stage]) + block, Block.BOTTLENECK, BOTTLENECK_ROLES[m.group(3)]
    m = re.fullmatch(r"layer(\d+)\.(.+)", name)
    if m is None:
        return (None, *TRANSFORMER_LABELS[name])
    block, role = TRANSFORMER_LABELS[m.group(2)]
    assert block in TRANSFORMER_LAYER_BLOCKS
    return int(m.group(1)), block, role


def _workloads(name: str) -> list[Workload]:
    """Every op list the builders make of preset `name`: each phase, with and without LM head, fused and paper."""
    spec = load_model(name)
    if isinstance(spec, ResNetSpec):
        return [build_workload(spec, fused=f, paper_layers=p) for f in (False, True) for p in (False, True)]
    if spec.family.value == "encoder":
        return [build_workload(spec, spec.default_seq_len() or 16, phase=Phase.ENCODER)]
    phases = (Phase.GENERATE, Phase.PREFILL, Phase.DECODE)
    return [build_workload(spec, 16, phase=ph, lm_head=lm) for ph in phases for lm in (False, True)]


PRESETS = preset_names("models")
ALL_OPS: list[tuple[str, Op]] = [(name, op) for name in PRESETS for wl in _workloads(name) for op in wl.ops]


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_op_carries_the_identity_its_label_spells(name: str) -> None:
    spec = load_model(name)
    for wl in _workloads(name):
        identities = [(op.layer, op.block, op.role) for op in wl.ops]
        assert identities == [_from_label(op.name, spec) for op in wl.ops]
        assert len(set(identities)) == len(identities), "an identity names one op of a workload"


def test_an_op_in_a_repeated_block_needs_its_layer_and_no_other_op_has_one() -> None:
    op = next(o for o in transformer_ops(load_model("bert-base"), Phase.ENCODER, 8) if o.role is OpRole.QK)
    with pytest.raises(WorkloadError, match="needs a layer index"):
        dataclasses.replace(op, layer=None)
    with pytest.raises(WorkloadError, match="needs a layer index"):
        dataclasses.replace(op, layer=-1)
    with pytest.raises(WorkloadError, match="needs no layer index"):
        dataclasses.replace(op, block=Block.HEAD)


def test_counting_reads_the_identity_where_it_read_labels() -> None:
    """`counting._paper_2023` asked `name.startswith("layer")`, `name == "head.fc"`, `.endswith(".sv"/".qk")`."""
    assert ALL_OPS
    for _, op in ALL_OPS:
        assert (op.block in TRANSFORMER_LAYER_BLOCKS) == op.name.startswith("layer"), op.name
        assert (op.role is OpRole.CLASSIFIER) == (op.name == "head.fc"), op.name
        assert (op.role is OpRole.SV) == op.name.endswith(".sv"), op.name
        assert (op.role is OpRole.QK) == op.name.endswith(".qk"), op.name


def test_the_requantized_input_is_the_operand_once_named_x_or_p() -> None:
    """The engine charged requantization for the input operand named "x" (projections, convs, the classifier) or "p"
    (scores x V's probabilities), the first input of every matmul and conv but Q x K^T, which has neither."""
    checked = 0
    for _, op in ALL_OPS:
        if op.kind in (OpKind.MATMUL, OpKind.CONV):
            expected = None if op.name.endswith(".qk") else op.operands[0]
            assert handed_on_input(op) is expected, op.name
            checked += 1
    assert checked > 1000


# the fusion study's old lookup: pair -> (matmul label after "layer0.", the kind of layer 0's op it fuses)
_OLD_PAIRS = {
    "qk+softmax": ("attn.qk", OpKind.SOFTMAX),
    "out+layernorm": ("attn.out", OpKind.LAYERNORM),
    "w2+layernorm": ("ffn.down", OpKind.LAYERNORM),
}


@pytest.mark.parametrize("name", ["bert-base", "distilbert-base", "roberta-base", "all-minilm-l6-v2", "vit-base"])
def test_the_fusion_study_pairs_the_ops_it_found_by_label(name: str) -> None:
    spec = load_model(name)
    assert isinstance(spec, ModelSpec)
    ops = transformer_ops(spec, Phase.ENCODER, spec.default_seq_len() or 64)
    by_name = {op.name: op for op in ops}
    assert set(PAIRS) == set(_OLD_PAIRS)
    for pair, (suffix, kind) in _OLD_PAIRS.items():
        old = (by_name[f"layer0.{suffix}"], next(o for o in ops if o.name.startswith("layer0.") and o.kind is kind))
        assert pair_ops(ops, PAIRS[pair]) == old


def _parts_by_label(spec: ModelSpec, phase: Phase, lm_head: bool) -> dict[str, object]:
    """NAS pricing's old decomposition: by a regex over each op's label."""
    layer_op = re.compile(r"^layer(\d+)\.(attn_norm|attn\.\w+|ffn_norm|ffn\.\w+)$")
    hw = load_hardware("gemmini-baseline")
    result = simulate_workload(build_workload(spec, 24, phase=phase, lm_head=lm_head), hw, mapper=MapperName.GEMMINI)
    base, attn, ffn = [0.0, 0.0], {}, {}
    for op in result.ops:
        match = layer_op.match(op.name)
        if match:
            part = attn if match.group(2).startswith("attn") else ffn
            acc = part.setdefault(int(match.group(1)), [0.0, 0.0])
        else:
            assert op.name.startswith("embed.") or op.name in ("final_norm", "lm_head")
            acc = base
        acc[0] += op.latency_cycles
        acc[1] += op.energy_pj
    return {
        "base": tuple(base),
        "attn": {k: tuple(v) for k, v in attn.items()},
        "ffn": {k: tuple(v) for k, v in ffn.items()},
    }


@pytest.mark.parametrize("phase", [Phase.PREFILL, Phase.GENERATE])
@pytest.mark.parametrize("family", ["gpt2", "llama-2-7b"])
def test_nas_pricing_splits_a_candidate_into_the_parts_the_label_regex_did(family: str, phase: Phase) -> None:
    """Heterogeneous layers, pre-norm; GPT-2 style (LayerNorm, GELU, learned positions) and Llama style (RMSNorm,
    SwiGLU, rotary), with the LM head; on a design that sends nonlinear ops to the host (requantization)."""
    spec = dataclasses.replace(
        load_model(family),
        n_layers=2,
        d_model=128,
        heads=(4, 2),
        kv_heads=(4, 2),
        d_ff=(256, 384),
        head_dim=32,
        vocab_size=500,
    )
    assert isinstance(spec, ModelSpec)
    parts = _simulate_parts(spec, load_hardware("gemmini-baseline"), 24, phase, True, "gemmini")
    assert {"base": parts.base, "attn": parts.attn, "ffn": parts.ffn} == _parts_by_label(spec, phase, True)
    assert sorted(parts.attn) == sorted(parts.ffn) == [0, 1]


def test_op_classes_of_the_roles_are_as_before() -> None:
    """Identity adds to an op's class, it does not replace it: projections, act-to-act matmuls keep their class."""
    classes = {
        OpRole.Q: OpClass.MHA_PROJ,
        OpRole.OUT: OpClass.MHA_PROJ,
        OpRole.QK: OpClass.MHA_ACT,
        OpRole.SV: OpClass.MHA_ACT,
        OpRole.UP: OpClass.FFN_PROJ,
        OpRole.DOWN: OpClass.FFN_PROJ,
    }
    for _, op in ALL_OPS:
        if op.role in classes:
            assert op.op_class is classes[op.role], op.name
