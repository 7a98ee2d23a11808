"""A weight-sharing decoder LM supernet: every architecture of a `SearchSpace` is a slice of one set of weights.

The model is GPT-2 style: learned token and position embeddings, pre-norm blocks (LayerNorm -> causal MHA -> add,
LayerNorm -> FFN with tanh-approximated GELU -> add), a final LayerNorm and an LM head tied to the token
embedding. No dropout (the paper states none).

Weight sharing slices leading rows and columns (the first-k rule of BigNAS/HAT; the paper does not state its rule,
digest §6.4):

- width d (shared by all layers): the first d channels of the embeddings, of every LayerNorm (whose statistics are
  then taken over those d channels), of every projection's d-sized side, and of the tied LM head;
- heads h (per layer): the first h heads. With head_rule ``fixed`` every head is ``space.head_dim`` wide whatever d
  is (HAT-style), so Q/K/V are h x head_dim wide and the largest is max(heads) x head_dim; this is what makes the
  paper's d = 672 with 10 heads well defined. With ``split`` a head is d / h wide, so Q/K/V are d wide and only the
  grouping into heads changes with h. Attention scores are scaled by 1/sqrt(head width) in both cases;
- FFN neurons (per layer): the first d_ff rows of W1 and columns of W2;
- depth N: the first N blocks, then the final LayerNorm.

A sub-network's forward is exactly that of a stand-alone model holding the sliced weights (`DecoderLM` with
`extract_subnet`), which the tests check against Hugging Face's GPT-2 too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812  (the conventional alias)
from torch import Tensor, nn

from tstack.errors import SpecError
from tstack.nas.space import Architecture, SearchSpace

LAYERNORM_EPS = 1e-5
INIT_STD = 0.02


@dataclass(frozen=True, slots=True)
class SubnetShape:
    """The tensor widths of one architecture: what the slicing needs."""

    n_layers: int
    d_model: int
    qkv: tuple[int, ...]  # per-layer Q/K/V width = heads x head width
    heads: tuple[int, ...]
    d_ff: tuple[int, ...]


def subnet_shape(space: SearchSpace, arch: Architecture) -> SubnetShape:
    if space.head_rule == "fixed":
        qkv = tuple(h * space.head_dim for h in arch.heads)
    else:
        qkv = (arch.d_model,) * arch.n_layers
    return SubnetShape(arch.n_layers, arch.d_model, qkv, arch.heads, arch.d_ff)


def max_qkv(space: SearchSpace) -> int:
    return max(space.heads) * space.head_dim if space.head_rule == "fixed" else max(space.d_model)


class _Block(nn.Module):
    """One block's parameters at the largest width; `forward` takes the active slice widths."""

    def __init__(self, d_max: int, qkv_max: int, ff_max: int) -> None:
        super().__init__()
        self.ln1_w = nn.Parameter(torch.ones(d_max))
        self.ln1_b = nn.Parameter(torch.zeros(d_max))
        # Q, K and V kept apart (not fused) so that each is sliced to its first rows independently.
        self.q_w = nn.Parameter(torch.empty(qkv_max, d_max))
        self.q_b = nn.Parameter(torch.zeros(qkv_max))
        self.k_w = nn.Parameter(torch.empty(qkv_max, d_max))
        self.k_b = nn.Parameter(torch.zeros(qkv_max))
        self.v_w = nn.Parameter(torch.empty(qkv_max, d_max))
        self.v_b = nn.Parameter(torch.zeros(qkv_max))
        self.o_w = nn.Parameter(torch.empty(d_max, qkv_max))
        self.o_b = nn.Parameter(torch.zeros(d_max))
        self.ln2_w = nn.Parameter(torch.ones(d_max))
        self.ln2_b = nn.Parameter(torch.zeros(d_max))
        self.fc1_w = nn.Parameter(torch.empty(ff_max, d_max))
        self.fc1_b = nn.Parameter(torch.zeros(ff_max))
        self.fc2_w = nn.Parameter(torch.empty(d_max, ff_max))
        self.fc2_b = nn.Parameter(torch.zeros(d_max))

    def forward(self, x: Tensor, d: int, qkv: int, heads: int, d_ff: int) -> Tensor:
        return block_forward(_sliced_block(self, d, qkv, d_ff), x, heads)


def _sliced_block(block: _Block, d: int, qkv: int, d_ff: int) -> dict[str, Tensor]:
    return {
        "ln1_w": block.ln1_w[:d],
        "ln1_b": block.ln1_b[:d],
        "q_w": block.q_w[:qkv, :d],
        "q_b": block.q_b[:qkv],
        "k_w": block.k_w[:qkv, :d],
        "k_b": block.k_b[:qkv],
        "v_w": block.v_w[:qkv, :d],
        "v_b": block.v_b[:qkv],
        "o_w": block.o_w[:d, :qkv],
        "o_b": block.o_b[:d],
        "ln2_w": block.ln2_w[:d],
        "ln2_b": block.ln2_b[:d],
        "fc1_w": block.fc1_w[:d_ff, :d],
        "fc1_b": block.fc1_b[:d_ff],
        "fc2_w": block.fc2_w[:d, :d_ff],
        "fc2_b": block.fc2_b[:d],
    }


def block_forward(w: Mapping[str, Tensor], x: Tensor, heads: int) -> Tensor:
    """One pre-norm block on x [batch, tokens, d] with weights of exactly the block's widths."""
    batch, tokens, d = x.shape
    h = F.layer_norm(x, (d,), w["ln1_w"], w["ln1_b"], LAYERNORM_EPS)
    qkv = w["q_w"].shape[0]
    head_width = qkv // heads

    def split(t: Tensor) -> Tensor:
        return t.view(batch, tokens, heads, head_width).transpose(1, 2)

    q = split(F.linear(h, w["q_w"], w["q_b"]))
    k = split(F.linear(h, w["k_w"], w["k_b"]))
    v = split(F.linear(h, w["v_w"], w["v_b"]))
    attn = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / math.sqrt(head_width))
    x = x + F.linear(attn.transpose(1, 2).reshape(batch, tokens, qkv), w["o_w"], w["o_b"])
    h = F.layer_norm(x, (d,), w["ln2_w"], w["ln2_b"], LAYERNORM_EPS)
    h = F.gelu(F.linear(h, w["fc1_w"], w["fc1_b"]), approximate="tanh")
    return x + F.linear(h, w["fc2_w"], w["fc2_b"])


class SuperNet(nn.Module):
    """All architectures of `space` in one module; `forward(tokens, arch)` runs the slice of `arch`."""

    def __init__(self, space: SearchSpace, *, seed: int = 0) -> None:
        super().__init__()
        self.space = space
        d_max, qkv_max, ff_max = max(space.d_model), max_qkv(space), max(space.d_ff)
        self.wte = nn.Parameter(torch.empty(space.vocab_size, d_max))
        self.wpe = nn.Parameter(torch.empty(space.seq_len, d_max))
        self.blocks = nn.ModuleList(_Block(d_max, qkv_max, ff_max) for _ in range(space.max_layers))
        self.lnf_w = nn.Parameter(torch.ones(d_max))
        self.lnf_b = nn.Parameter(torch.zeros(d_max))
        self._active: Architecture = space.largest()
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int) -> None:
        """GPT-2 initialisation (normal 0.02; residual output projections scaled by 1/sqrt(2 N_max)), from `seed`."""
        gen = torch.Generator().manual_seed(seed)
        residual_std = INIT_STD / math.sqrt(2 * self.space.max_layers)
        with torch.no_grad():
            nn.init.normal_(self.wte, 0.0, INIT_STD, generator=gen)
            nn.init.normal_(self.wpe, 0.0, 0.01, generator=gen)
            for block in self.blocks:
                assert isinstance(block, _Block)
                for w in (block.q_w, block.k_w, block.v_w, block.fc1_w):
                    nn.init.normal_(w, 0.0, INIT_STD, generator=gen)
                for w in (block.o_w, block.fc2_w):
                    nn.init.normal_(w, 0.0, residual_std, generator=gen)

    def set_active(self, arch: Architecture) -> None:
        self._active = self.space.check(arch)

    @property
    def active(self) -> Architecture:
        return self._active

    def forward(self, tokens: Tensor, arch: Architecture | None = None) -> Tensor:
        """Logits [batch, tokens, vocab] of `arch` (default: the active one) for token ids [batch, tokens]."""
        shape = subnet_shape(self.space, self._active if arch is None else arch)
        if tokens.shape[-1] > self.space.seq_len:
            raise SpecError(f"{tokens.shape[-1]} tokens exceed the supernet's {self.space.seq_len} positions")
        d = shape.d_model
        x = F.embedding(tokens, self.wte[:, :d]) + self.wpe[: tokens.shape[-1], :d]
        for i in range(shape.n_layers):
            block = self.blocks[i]
            x = block(x, d, shape.qkv[i], shape.heads[i], shape.d_ff[i])
        x = F.layer_norm(x, (d,), self.lnf_w[:d], self.lnf_b[:d], LAYERNORM_EPS)
        return F.linear(x, self.wte[:, :d])


def extract_subnet(net: SuperNet, arch: Architecture) -> dict[str, Tensor]:
    """The sliced weights of `arch` as a stand-alone state dict for `DecoderLM` (copies, detached)."""
    shape = subnet_shape(net.space, net.space.check(arch))
    d = shape.d_model
    out = {"wte": net.wte[:, :d], "wpe": net.wpe[:, :d], "lnf_w": net.lnf_w[:d], "lnf_b": net.lnf_b[:d]}
    for i in range(shape.n_layers):
        block = net.blocks[i]
        assert isinstance(block, _Block)
        for name, t in _sliced_block(block, d, shape.qkv[i], shape.d_ff[i]).items():
            out[f"blocks.{i}.{name}"] = t
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


class DecoderLM(nn.Module):
    """A stand-alone decoder of one architecture's exact widths (the deployable form of a sub-network)."""

    def __init__(self, space: SearchSpace, arch: Architecture) -> None:
        super().__init__()
        shape = subnet_shape(space, space.check(arch))
        self.heads = shape.heads
        d = shape.d_model
        self.wte = nn.Parameter(torch.zeros(space.vocab_size, d))
        self.wpe = nn.Parameter(torch.zeros(space.seq_len, d))
        self.blocks = nn.ModuleList(_Block(d, q, f) for q, f in zip(shape.qkv, shape.d_ff, strict=True))
        self.lnf_w = nn.Parameter(torch.ones(d))
        self.lnf_b = nn.Parameter(torch.zeros(d))

    def forward(self, tokens: Tensor) -> Tensor:
        x = F.embedding(tokens, self.wte) + self.wpe[: tokens.shape[-1]]
        for block, heads in zip(self.blocks, self.heads, strict=True):
            assert isinstance(block, _Block)
            x = block_forward(dict(block.named_parameters()), x, heads)
        x = F.layer_norm(x, (x.shape[-1],), self.lnf_w, self.lnf_b, LAYERNORM_EPS)
        return F.linear(x, self.wte)
