"""Op lists of Transformer encoders and decoders in each phase.

Layer structure (per layer i, in order): [pre-norm] Q, K, V projections, [RoPE], Q x K^T, softmax, scores x V,
output projection, residual add, [post-norm]; [pre-norm] FFN up (and gate), activation, FFN down, residual add,
[post-norm]. Each projection is its own op even where a framework fuses Q/K/V into one GEMM (GPT-2, GPT-NeoX),
as the paper counts them. Attention is dense: a causal prefill computes the full l x l scores, as eager kernels
do. Grouped-query attention is modelled with dims B (batch x kv heads) and G (query heads per kv head), so a
shared K/V is counted once per kv head.
"""

from __future__ import annotations

from tstack.errors import WorkloadError
from tstack.workload.model import Activation, ModelSpec, Norm, NormPlacement, PositionEmbedding
from tstack.workload.ops import Op, OpClass, Operand, OpKind, Phase, Role, Sweep

_ACTIVATION_KIND = {
    Activation.GELU: OpKind.GELU,
    Activation.GELU_TANH: OpKind.GELU_TANH,
    Activation.RELU: OpKind.RELU,
    Activation.SWIGLU: OpKind.SWIGLU,
}


class _Builder:
    def __init__(self, spec: ModelSpec, *, batch: int, weight_bits: int, act_bits: int) -> None:
        self.spec = spec
        self.batch = batch
        self.wb = weight_bits
        self.ab = act_bits
        self.ops: list[Op] = []

    # -- primitives -------------------------------------------------------------------------------------
    def linear(
        self, name: str, op_class: OpClass, tokens: int, d_in: int, d_out: int, *, bias: bool, repeat: int
    ) -> None:
        operands = [
            Operand("x", Role.INPUT, ("M", "K"), self.ab),
            Operand("w", Role.WEIGHT, ("K", "N"), self.wb),
        ]
        if bias:
            operands.append(Operand("b", Role.BIAS, ("N",), self.wb))
        operands.append(Operand("y", Role.OUTPUT, ("M", "N"), self.ab))
        dims = (("B", 1), ("M", tokens), ("N", d_out), ("K", d_in))
        self.ops.append(Op(name, OpKind.MATMUL, op_class, dims, tuple(operands), repeat=repeat))

    def elementwise(
        self,
        name: str,
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
        operands = [Operand(f"x{i}", Role.INPUT, ("M", "N"), self.ab) for i in range(n_inputs)]
        operands += [Operand(f"p{i}", Role.WEIGHT, ("N",), self.wb) for i in range(params)]
        operands.append(Operand("y", Role.OUTPUT, ("M", "N"), self.ab))
        self.ops.append(Op(name, kind, op_class, (("M", rows), ("N", width)), tuple(operands), repeat=repeat))

    def norm(self, name: str, rows: int, repeat: int) -> None:
        spec = self.spec
        if spec.norm is Norm.LAYERNORM:
            kind, params = OpKind.LAYERNORM, 2 if spec.norm_bias else 1
        else:
            kind, params = OpKind.RMSNORM, 1
        self.elementwise(name, kind, OpClass.NORM, rows, spec.d_model, params=params, repeat=repeat)

    # -- attention ----------------------------------------------------------------------------------------
    def attention_core(self, prefix: str, layer: int, phase: Phase, seq: int) -> None:
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
        qk = Op(
            f"{prefix}.attn.qk",
            OpKind.MATMUL,
            OpClass.MHA_ACT,
            (("B", b), ("G", group), ("M", queries), ("N", keys), ("K", hd)),
            (
                Operand("q", Role.INPUT, ("B", "G", "M", "K"), self.ab),
                Operand("k", key_role, ("B", "K", "N"), self.ab),
                Operand("s", Role.OUTPUT, ("B", "G", "M", "N"), self.ab),
            ),
            sweep=sweep_qk,
        )
        softmax = Op(
            f"{prefix}.attn.softmax",
            OpKind.SOFTMAX,
            OpClass.SOFTMAX,
            (("B", b), ("G", group), ("M", queries), ("N", keys)),
            (
                Operand("s", Role.INPUT, ("B", "G", "M", "N"), self.ab),
                Operand("p", Role.OUTPUT, ("B", "G", "M", "N"), self.ab),
            ),
            sweep=None if sweep_qk is None else Sweep("N", 1, seq),
        )
        sv = Op(
            f"{prefix}.attn.sv",
            OpKind.MATMUL,
            OpClass.MHA_ACT,
            (("B", b), ("G", group), ("M", queries), ("N", hd), ("K", keys)),
            (
                Operand("p", Role.INPUT, ("B", "G", "M", "K"), self.ab),
                Operand("v", key_role, ("B", "K", "N"), self.ab),
                Operand("o", Role.OUTPUT, ("B", "G", "M", "N"), self.ab),
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
        self.embeddings(tokens, steps, phase, seq)
        for i in range(spec.n_layers):
            self.layer(i, phase, seq, tokens, steps)
        if spec.final_norm:
            self.norm("final_norm", tokens, steps)
        if spec.embedding_proj_dim:
            self.linear("project_out", OpClass.OTHER, tokens, spec.d_model, spec.embed_width, bias=False, repeat=steps)
        if spec.pooler:
            self.linear("pooler.dense", OpClass.OTHER, self.batch, spec.d_model, spec.d_model, bias=True, repeat=steps)
            self.elementwise("pooler.tanh", OpKind.TANH, OpClass.OTHER, self.batch, spec.d_model, repeat=steps)
        if lm_head:
            self.linear("lm_head", OpClass.OTHER, tokens, spec.embed_width, spec.vocab_size, bias=False, repeat=steps)
        return tuple(self.ops)

    def embeddings(self, tokens: int, steps: int, phase: Phase, seq: int) -> None:
        spec = self.spec
        width = spec.embed_width
        if spec.patch is not None:
            p = spec.patch
            grid = p.image_px // p.patch_px
            self.ops.append(
                Op(
                    "embed.patches",
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
                        Operand("x", Role.INPUT, ("N", "C", "H", "W"), self.ab),
                        Operand("w", Role.WEIGHT, ("K", "C", "R", "S"), self.wb),
                        Operand("b", Role.BIAS, ("K",), self.wb),
                        Operand("y", Role.OUTPUT, ("N", "K", "P", "Q"), self.ab),
                    ),
                    attrs=(("stride", p.patch_px),),
                )
            )
        else:
            self.elementwise("embed.tokens", OpKind.EMBEDDING, OpClass.OTHER, tokens, width, repeat=steps)
        if spec.type_vocab_size:
            self.elementwise("embed.add_types", OpKind.ADD, OpClass.OTHER, tokens, width, n_inputs=2, repeat=steps)
        if spec.embedding_proj_dim:
            self.linear("project_in", OpClass.OTHER, tokens, width, spec.d_model, bias=False, repeat=steps)
        if spec.position_embedding is PositionEmbedding.LEARNED:
            self.elementwise(
                "embed.add_positions",
                OpKind.ADD,
                OpClass.OTHER,
                tokens,
                spec.d_model,
                n_inputs=2,
                repeat=steps,
            )
        if spec.embedding_norm:
            self.norm("embed.norm", tokens, steps)

    def layer(self, i: int, phase: Phase, seq: int, tokens: int, steps: int) -> None:
        spec = self.spec
        p = f"layer{i}"
        pre = spec.norm_placement is NormPlacement.PRE
        d, qw, kvw = spec.d_model, spec.q_width(i), spec.kv_width(i)
        if pre:
            self.norm(f"{p}.attn_norm", tokens, steps)
        self.linear(f"{p}.attn.q", OpClass.MHA_PROJ, tokens, d, qw, bias=spec.attn_bias, repeat=steps)
        self.linear(f"{p}.attn.k", OpClass.MHA_PROJ, tokens, d, kvw, bias=spec.attn_bias, repeat=steps)
        self.linear(f"{p}.attn.v", OpClass.MHA_PROJ, tokens, d, kvw, bias=spec.attn_bias, repeat=steps)
        if spec.position_embedding is PositionEmbedding.ROTARY:
            self.elementwise(f"{p}.attn.rope", OpKind.ROPE, OpClass.OTHER, tokens, qw + kvw, repeat=steps)
        self.attention_core(p, i, phase, seq)
        self.linear(f"{p}.attn.out", OpClass.MHA_PROJ, tokens, qw, d, bias=spec.attn_bias, repeat=steps)
        self.elementwise(f"{p}.attn.residual", OpKind.ADD, OpClass.RESIDUAL, tokens, d, n_inputs=2, repeat=steps)
        if not pre:
            self.norm(f"{p}.attn_norm", tokens, steps)
        else:
            self.norm(f"{p}.ffn_norm", tokens, steps)
        dff = spec.d_ff[i]
        if spec.activation is Activation.SWIGLU:
            self.linear(f"{p}.ffn.gate", OpClass.FFN_PROJ, tokens, d, dff, bias=spec.mlp_bias, repeat=steps)
        self.linear(f"{p}.ffn.up", OpClass.FFN_PROJ, tokens, d, dff, bias=spec.mlp_bias, repeat=steps)
        n_in = 2 if spec.activation is Activation.SWIGLU else 1
        self.elementwise(
            f"{p}.ffn.act",
            _ACTIVATION_KIND[spec.activation],
            OpClass.ACTIVATION,
            tokens,
            dff,
            n_inputs=n_in,
            repeat=steps,
        )
        self.linear(f"{p}.ffn.down", OpClass.FFN_PROJ, tokens, dff, d, bias=spec.mlp_bias, repeat=steps)
        self.elementwise(f"{p}.ffn.residual", OpKind.ADD, OpClass.RESIDUAL, tokens, d, n_inputs=2, repeat=steps)
        if not pre:
            self.norm(f"{p}.ffn_norm", tokens, steps)


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
