"""Op lists of Transformer encoders and decoders in each phase.

Layer structure (per layer i, in order): [pre-norm] Q, K, V projections, [RoPE], Q x K^T, softmax, scores x V,
output projection, residual add, [post-norm]; [pre-norm] FFN up (and gate), activation, FFN down, residual add,
[post-norm]. Each projection is its own op even where a framework fuses Q/K/V into one GEMM (GPT-2, GPT-NeoX),
as the paper counts them. Attention is dense: a causal prefill computes the full l x l scores, as eager kernels
do. Grouped-query attention is modelled with dims B (batch x kv heads) and G (query heads per kv head), so a
shared K/V is counted once per kv head.

Every op is placed by its identity (layer, block, role); its printed name is derived from that by `op_label`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tstack.errors import WorkloadError
from tstack.workload.identity import Block, OpRole, Tensor
from tstack.workload.model import Activation, ModelSpec, Norm, NormPlacement, PositionEmbedding
from tstack.workload.ops import Op, OpClass, Operand, OpKind, Phase, Role, Sweep

_ACTIVATION_KIND = {
    Activation.GELU: OpKind.GELU,
    Activation.GELU_TANH: OpKind.GELU_TANH,
    Activation.RELU: OpKind.RELU,
    Activation.SWIGLU: OpKind.SWIGLU,
}

# the printed label of each (block, role); a layer's ops are prefixed with ``layer<i>.``
_LABELS: dict[tuple[Block, OpRole], str] = {
    (Block.EMBEDDING, OpRole.PATCHES): "embed.patches",
    (Block.EMBEDDING, OpRole.TOKENS): "embed.tokens",
    (Block.EMBEDDING, OpRole.ADD_TYPES): "embed.add_types",
    (Block.EMBEDDING, OpRole.PROJECT_IN): "project_in",
    (Block.EMBEDDING, OpRole.ADD_POSITIONS): "embed.add_positions",
    (Block.EMBEDDING, OpRole.NORM): "embed.norm",
    (Block.ATTENTION, OpRole.NORM): "attn_norm",
    (Block.ATTENTION, OpRole.Q): "attn.q",
    (Block.ATTENTION, OpRole.K): "attn.k",
    (Block.ATTENTION, OpRole.V): "attn.v",
    (Block.ATTENTION, OpRole.ROPE): "attn.rope",
    (Block.ATTENTION, OpRole.QK): "attn.qk",
    (Block.ATTENTION, OpRole.SOFTMAX): "attn.softmax",
    (Block.ATTENTION, OpRole.SV): "attn.sv",
    (Block.ATTENTION, OpRole.OUT): "attn.out",
    (Block.ATTENTION, OpRole.RESIDUAL): "attn.residual",
    (Block.FFN, OpRole.NORM): "ffn_norm",
    (Block.FFN, OpRole.GATE): "ffn.gate",
    (Block.FFN, OpRole.UP): "ffn.up",
    (Block.FFN, OpRole.ACTIVATION): "ffn.act",
    (Block.FFN, OpRole.DOWN): "ffn.down",
    (Block.FFN, OpRole.RESIDUAL): "ffn.residual",
    (Block.HEAD, OpRole.NORM): "final_norm",
    (Block.HEAD, OpRole.PROJECT_OUT): "project_out",
    (Block.HEAD, OpRole.POOLER): "pooler.dense",
    (Block.HEAD, OpRole.POOLER_ACTIVATION): "pooler.tanh",
    (Block.HEAD, OpRole.LM_HEAD): "lm_head",
}


def op_label(block: Block, role: OpRole, layer: int | None = None) -> str:
    """The printed name of a Transformer op (``layer3.attn.qk``, ``embed.tokens``): for people, never parsed."""
    label = _LABELS[(block, role)]
    return label if layer is None else f"layer{layer}.{label}"


@dataclass(frozen=True, slots=True)
class _At:
    """Where an op sits (its identity); the op's label is derived from it."""

    block: Block
    role: OpRole
    layer: int | None = None

    def op(
        self,
        kind: OpKind,
        op_class: OpClass,
        dims: tuple[tuple[str, int], ...],
        operands: tuple[Operand, ...],
        *,
        repeat: int = 1,
        sweep: Sweep | None = None,
        attrs: tuple[tuple[str, int], ...] = (),
    ) -> Op:
        label = op_label(self.block, self.role, self.layer)
        return Op(
            label,
            kind,
            op_class,
            dims,
            operands,
            repeat=repeat,
            sweep=sweep,
            attrs=attrs,
            block=self.block,
            role=self.role,
            layer=self.layer,
        )


class _Builder:
    def __init__(self, spec: ModelSpec, *, batch: int, weight_bits: int, act_bits: int) -> None:
        self.spec = spec
        self.batch = batch
        self.wb = weight_bits
        self.ab = act_bits
        self.ops: list[Op] = []

    # -- primitives -------------------------------------------------------------------------------------
    def add(self, op: Op) -> None:
        self.ops.append(op)

    def linear(
        self,
        at: _At,
        op_class: OpClass,
        tokens: int,
        d_in: int,
        d_out: int,
        *,
        bias: bool,
        repeat: int,
    ) -> None:
        operands = [
            Operand(Tensor.ACTIVATION, Role.INPUT, ("M", "K"), self.ab),
            Operand(Tensor.WEIGHT, Role.WEIGHT, ("K", "N"), self.wb),
        ]
        if bias:
            operands.append(Operand(Tensor.BIAS, Role.BIAS, ("N",), self.wb))
        operands.append(Operand(Tensor.OUTPUT, Role.OUTPUT, ("M", "N"), self.ab))
        dims = (("B", 1), ("M", tokens), ("N", d_out), ("K", d_in))
        self.add(at.op(OpKind.MATMUL, op_class, dims, tuple(operands), repeat=repeat))

    def elementwise(
        self,
        at: _At,
        kind: OpKind,
        op_class: OpClass,
        rows: int,
        width: int,
        *,
        n_inputs: int = 1,
        params: int = 0,
        repeat: int,
    ) -> None:
        """An op over a rows x width tensor; `params` per-channel parameter vectors (LN gamma/beta)."""
        operands = [Operand(Tensor.ACTIVATION, Role.INPUT, ("M", "N"), self.ab) for _ in range(n_inputs)]
        operands += [Operand(Tensor.PARAMETER, Role.WEIGHT, ("N",), self.wb) for _ in range(params)]
        operands.append(Operand(Tensor.OUTPUT, Role.OUTPUT, ("M", "N"), self.ab))
        dims = (("M", rows), ("N", width))
        self.add(at.op(kind, op_class, dims, tuple(operands), repeat=repeat))

    def norm(self, at: _At, rows: int, repeat: int) -> None:
        spec = self.spec
        if spec.norm is Norm.LAYERNORM:
            kind, params = OpKind.LAYERNORM, 2 if spec.norm_bias else 1
        else:
            kind, params = OpKind.RMSNORM, 1
        self.elementwise(at, kind, OpClass.NORM, rows, spec.d_model, params=params, repeat=repeat)

    # -- attention ----------------------------------------------------------------------------------------
    def attention_core(self, layer: int, phase: Phase, seq: int) -> None:
        """Q x K^T, softmax, scores x V for one layer. In GENERATE the key length sweeps 1..seq."""
        spec = self.spec
        kv = spec.kv_heads[layer]
        group = spec.heads[layer] // kv
        hd = spec.head_dim
        b = self.batch * kv
        if phase in (Phase.ENCODER, Phase.PREFILL):
            queries, keys, sweep_qk, sweep_sv = seq, seq, None, None
        else:
            queries, keys = 1, seq
            sweep_qk = Sweep("N", 1, seq) if phase is Phase.GENERATE else None
            sweep_sv = Sweep("K", 1, seq) if phase is Phase.GENERATE else None
        key_role = Role.INPUT if phase in (Phase.ENCODER, Phase.PREFILL) else Role.CACHE
        qk = _At(Block.ATTENTION, OpRole.QK, layer).op(
            OpKind.MATMUL,
            OpClass.MHA_ACT,
            (("B", b), ("G", group), ("M", queries), ("N", keys), ("K", hd)),
            (
                Operand(Tensor.QUERY, Role.INPUT, ("B", "G", "M", "K"), self.ab),
                Operand(Tensor.KEY, key_role, ("B", "K", "N"), self.ab),
                Operand(Tensor.SCORES, Role.OUTPUT, ("B", "G", "M", "N"), self.ab),
            ),
            sweep=sweep_qk,
        )
        softmax = _At(Block.ATTENTION, OpRole.SOFTMAX, layer).op(
            OpKind.SOFTMAX,
            OpClass.SOFTMAX,
            (("B", b), ("G", group), ("M", queries), ("N", keys)),
            (
                Operand(Tensor.SCORES, Role.INPUT, ("B", "G", "M", "N"), self.ab),
                Operand(Tensor.PROBABILITIES, Role.OUTPUT, ("B", "G", "M", "N"), self.ab),
            ),
            sweep=None if sweep_qk is None else Sweep("N", 1, seq),
        )
        sv = _At(Block.ATTENTION, OpRole.SV, layer).op(
            OpKind.MATMUL,
            OpClass.MHA_ACT,
            (("B", b), ("G", group), ("M", queries), ("N", hd), ("K", keys)),
            (
                Operand(Tensor.PROBABILITIES, Role.INPUT, ("B", "G", "M", "K"), self.ab),
                Operand(Tensor.VALUE, key_role, ("B", "K", "N"), self.ab),
                Operand(Tensor.CONTEXT, Role.OUTPUT, ("B", "G", "M", "N"), self.ab),
            ),
            sweep=sweep_sv,
        )
        self.ops += [qk, softmax, sv]

    # -- whole model ----------------------------------------------------------------------------------------
    def build(self, phase: Phase, seq: int, *, lm_head: bool) -> tuple[Op, ...]:
        spec = self.spec
        one_step = phase in (Phase.GENERATE, Phase.DECODE)
        # tokens processed by weight ops per instance, and how many identical instances (generation steps)
        tokens = self.batch if one_step else self.batch * seq
        steps = seq if phase is Phase.GENERATE else 1
        self.embeddings(tokens, steps)
        for i in range(spec.n_layers):
            self.layer(i, phase, seq, tokens, steps)
        head = Block.HEAD
        if spec.final_norm:
            self.norm(_At(head, OpRole.NORM), tokens, steps)
        if spec.embedding_proj_dim:
            at = _At(head, OpRole.PROJECT_OUT)
            self.linear(at, OpClass.OTHER, tokens, spec.d_model, spec.embed_width, bias=False, repeat=steps)
        if spec.pooler:
            at = _At(head, OpRole.POOLER)
            self.linear(at, OpClass.OTHER, self.batch, spec.d_model, spec.d_model, bias=True, repeat=steps)
            at = _At(head, OpRole.POOLER_ACTIVATION)
            self.elementwise(at, OpKind.TANH, OpClass.OTHER, self.batch, spec.d_model, repeat=steps)
        if lm_head:
            at = _At(head, OpRole.LM_HEAD)
            self.linear(at, OpClass.OTHER, tokens, spec.embed_width, spec.vocab_size, bias=False, repeat=steps)
        return tuple(self.ops)

    def embeddings(self, tokens: int, steps: int) -> None:
        spec = self.spec
        width = spec.embed_width
        embed = Block.EMBEDDING
        if spec.patch is not None:
            p = spec.patch
            grid = p.image_px // p.patch_px
            self.add(
                _At(embed, OpRole.PATCHES).op(
                    OpKind.CONV,
                    OpClass.OTHER,
                    (
                        ("N", self.batch),
                        ("K", spec.d_model),
                        ("C", p.channels),
                        ("P", grid),
                        ("Q", grid),
                        ("R", p.patch_px),
                        ("S", p.patch_px),
                        ("H", p.image_px),
                        ("W", p.image_px),
                    ),
                    (
                        Operand(Tensor.ACTIVATION, Role.INPUT, ("N", "C", "H", "W"), self.ab),
                        Operand(Tensor.WEIGHT, Role.WEIGHT, ("K", "C", "R", "S"), self.wb),
                        Operand(Tensor.BIAS, Role.BIAS, ("K",), self.wb),
                        Operand(Tensor.OUTPUT, Role.OUTPUT, ("N", "K", "P", "Q"), self.ab),
                    ),
                    attrs=(("stride", p.patch_px),),
                )
            )
        else:
            self.elementwise(_At(embed, OpRole.TOKENS), OpKind.EMBEDDING, OpClass.OTHER, tokens, width, repeat=steps)
        if spec.type_vocab_size:
            at = _At(embed, OpRole.ADD_TYPES)
            self.elementwise(at, OpKind.ADD, OpClass.OTHER, tokens, width, n_inputs=2, repeat=steps)
        if spec.embedding_proj_dim:
            at = _At(embed, OpRole.PROJECT_IN)
            self.linear(at, OpClass.OTHER, tokens, width, spec.d_model, bias=False, repeat=steps)
        if spec.position_embedding is PositionEmbedding.LEARNED:
            at = _At(embed, OpRole.ADD_POSITIONS)
            self.elementwise(at, OpKind.ADD, OpClass.OTHER, tokens, spec.d_model, n_inputs=2, repeat=steps)
        if spec.embedding_norm:
            self.norm(_At(embed, OpRole.NORM), tokens, steps)

    def layer(self, i: int, phase: Phase, seq: int, tokens: int, steps: int) -> None:
        spec = self.spec
        pre = spec.norm_placement is NormPlacement.PRE
        d, qw, kvw = spec.d_model, spec.q_width(i), spec.kv_width(i)

        def attn(role: OpRole) -> _At:
            return _At(Block.ATTENTION, role, i)

        def ffn(role: OpRole) -> _At:
            return _At(Block.FFN, role, i)

        if pre:
            self.norm(attn(OpRole.NORM), tokens, steps)
        for role, width in ((OpRole.Q, qw), (OpRole.K, kvw), (OpRole.V, kvw)):
            self.linear(attn(role), OpClass.MHA_PROJ, tokens, d, width, bias=spec.attn_bias, repeat=steps)
        if spec.position_embedding is PositionEmbedding.ROTARY:
            self.elementwise(attn(OpRole.ROPE), OpKind.ROPE, OpClass.OTHER, tokens, qw + kvw, repeat=steps)
        self.attention_core(i, phase, seq)
        self.linear(attn(OpRole.OUT), OpClass.MHA_PROJ, tokens, qw, d, bias=spec.attn_bias, repeat=steps)
        at = attn(OpRole.RESIDUAL)
        self.elementwise(at, OpKind.ADD, OpClass.RESIDUAL, tokens, d, n_inputs=2, repeat=steps)
        if not pre:
            self.norm(attn(OpRole.NORM), tokens, steps)
        else:
            self.norm(ffn(OpRole.NORM), tokens, steps)
        dff = spec.d_ff[i]
        if spec.activation is Activation.SWIGLU:
            self.linear(ffn(OpRole.GATE), OpClass.FFN_PROJ, tokens, d, dff, bias=spec.mlp_bias, repeat=steps)
        self.linear(ffn(OpRole.UP), OpClass.FFN_PROJ, tokens, d, dff, bias=spec.mlp_bias, repeat=steps)
        n_in = 2 if spec.activation is Activation.SWIGLU else 1
        self.elementwise(
            ffn(OpRole.ACTIVATION),
            _ACTIVATION_KIND[spec.activation],
            OpClass.ACTIVATION,
            tokens,
            dff,
            n_inputs=n_in,
            repeat=steps,
        )
        self.linear(ffn(OpRole.DOWN), OpClass.FFN_PROJ, tokens, dff, d, bias=spec.mlp_bias, repeat=steps)
        at = ffn(OpRole.RESIDUAL)
        self.elementwise(at, OpKind.ADD, OpClass.RESIDUAL, tokens, d, n_inputs=2, repeat=steps)
        if not pre:
            self.norm(ffn(OpRole.NORM), tokens, steps)


def transformer_ops(
    spec: ModelSpec,
    phase: Phase,
    seq_len: int,
    *,
    batch: int = 1,
    weight_bits: int = 8,
    act_bits: int = 8,
    lm_head: bool = False,
) -> tuple[Op, ...]:
    """The ordered op list of `spec` for one phase; see the module docstring for the layer structure."""
    if phase in (Phase.GENERATE, Phase.PREFILL, Phase.DECODE) and spec.family.value != "decoder":
        raise WorkloadError(
            f"phase {phase.value!r} needs a decoder, but {spec.name!r} is an encoder; use --phase encoder"
        )
    if phase is Phase.ENCODER and spec.family.value == "decoder":
        raise WorkloadError(
            f"{spec.name!r} is a decoder; use --phase generate, prefill or decode (encoder is for BERT-like models)"
        )
    if lm_head and spec.patch is not None:
        raise WorkloadError(f"{spec.name!r} has no vocabulary, so it has no LM head; drop --lm-head")
    builder = _Builder(spec, batch=batch, weight_bits=weight_bits, act_bits=act_bits)
    return builder.build(phase, seq_len, lm_head=lm_head)
