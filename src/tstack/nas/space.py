"""The NAS search space: which decoder shapes a search may pick, and the candidates as `ModelSpec`s.

A candidate (`Architecture`) has N layers, a width d shared by all layers, and per-layer head counts and FFN
widths (the paper's Table 8/9). Head width follows one of two rules, stated by the space:

- ``fixed``: every head is ``head_dim`` wide (HAT-style), so a layer's Q/K/V width is heads x head_dim and need not
  equal d. This is what makes the paper's d = 672 with 10 heads well defined; it is the default.
- ``split``: head_dim = d / heads (BERT/GPT-2 style); every (d, heads) pair of the space must divide evenly, which
  is checked when the space is loaded.

Genes: a candidate is encoded as a fixed-length genome (n_layers, d_model, heads_0..heads_{N-1}, d_ff_0..d_ff_{N-1}
for the largest N), so samplers that need fixed parameter names (Optuna) see the same names for every candidate;
genes of layers beyond n_layers are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tstack.errors import SpecError
from tstack.workload.model import Activation, Family, ModelSpec, NormPlacement

HEAD_RULES = ("fixed", "split")


@dataclass(frozen=True, slots=True)
class Architecture:
    """One candidate: N layers, shared width d_model, per-layer heads and FFN widths."""

    n_layers: int
    d_model: int
    heads: tuple[int, ...]
    d_ff: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.heads) != self.n_layers or len(self.d_ff) != self.n_layers:
            raise SpecError(
                f"architecture with {self.n_layers} layers needs {self.n_layers} heads and d_ff entries, "
                f"got {len(self.heads)} and {len(self.d_ff)}"
            )

    @property
    def key(self) -> str:
        """A stable, human-readable identity, e.g. ``L3-d96-h4.4.2-f256.128.384``."""
        heads = ".".join(map(str, self.heads))
        ffn = ".".join(map(str, self.d_ff))
        return f"L{self.n_layers}-d{self.d_model}-h{heads}-f{ffn}"

    @classmethod
    def from_key(cls, key: str) -> Architecture:
        try:
            layers, d, h, f = key.split("-")
            heads = tuple(int(x) for x in h[1:].split("."))
            d_ff = tuple(int(x) for x in f[1:].split("."))
            return cls(int(layers[1:]), int(d[1:]), heads, d_ff)
        except (ValueError, IndexError) as exc:
            raise SpecError(f"{key!r} is not an architecture key like L3-d96-h4.4.2-f256.128.384") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"n_layers": self.n_layers, "d_model": self.d_model, "heads": list(self.heads), "d_ff": list(self.d_ff)}


_MAX_CHOICES = 4096  # choices per gene; the paper's space has a handful


def _values(raw: Any, field: str) -> tuple[int, ...]:
    if isinstance(raw, Mapping):
        try:
            start, stop, step = int(raw["start"]), int(raw["stop"]), int(raw["step"])
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise SpecError(f"search space field {field!r}: a range needs integer start, stop and step") from exc
        if step <= 0 or stop < start:
            raise SpecError(f"search space field {field!r}: need step > 0 and stop >= start")
        if (stop - start) // step >= _MAX_CHOICES:  # found by fuzzing: stop 1.5e20 allocated a range of 1e19
            raise SpecError(
                f"search space field {field!r}: the range has more than {_MAX_CHOICES} values; raise step or lower stop"
            )
        values = tuple(range(start, stop + 1, step))
    elif isinstance(raw, list | tuple):
        try:
            values = tuple(sorted({int(v) for v in raw}))
        except (TypeError, ValueError, OverflowError) as exc:
            raise SpecError(f"search space field {field!r}: values must be integers") from exc
    else:
        raise SpecError(f"search space field {field!r}: give a list of values or {{start, stop, step}}")
    if not values or min(values) <= 0:
        raise SpecError(f"search space field {field!r}: needs at least one positive value")
    return values


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """The choices of a search, plus the sequence length and vocabulary the candidates are trained and priced at."""

    name: str
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    d_model: tuple[int, ...]
    d_ff: tuple[int, ...]
    head_rule: str = "fixed"
    head_dim: int = 64
    seq_len: int = 512
    vocab_size: int = 50257

    def __post_init__(self) -> None:
        if self.head_rule not in HEAD_RULES:
            raise SpecError(f"search space {self.name!r}: head_rule must be one of {', '.join(HEAD_RULES)}")
        if self.head_rule == "split":
            bad = [(d, h) for d in self.d_model for h in self.heads if d % h]
            if bad:
                d, h = bad[0]
                raise SpecError(
                    f"search space {self.name!r}: head_rule split needs every d_model divisible by every head "
                    f"count, but {d} % {h} != 0; use head_rule: fixed or change the values"
                )
        if self.seq_len <= 0 or self.vocab_size <= 0:
            raise SpecError(f"search space {self.name!r}: seq_len and vocab_size must be positive")

    @property
    def max_layers(self) -> int:
        return max(self.layers)

    @property
    def size(self) -> int:
        """Number of distinct architectures."""
        per_layer = len(self.heads) * len(self.d_ff)
        return len(self.d_model) * sum(int(per_layer**n) for n in self.layers)

    def largest(self) -> Architecture:
        n = self.max_layers
        return Architecture(n, max(self.d_model), (max(self.heads),) * n, (max(self.d_ff),) * n)

    def smallest(self) -> Architecture:
        n = min(self.layers)
        return Architecture(n, min(self.d_model), (min(self.heads),) * n, (min(self.d_ff),) * n)

    def head_dim_of(self, arch: Architecture) -> int:
        if self.head_rule == "fixed":
            return self.head_dim
        return arch.d_model // arch.heads[0]

    def contains(self, arch: Architecture) -> bool:
        return (
            arch.n_layers in self.layers
            and arch.d_model in self.d_model
            and all(h in self.heads for h in arch.heads)
            and all(f in self.d_ff for f in arch.d_ff)
            and (self.head_rule == "fixed" or len(set(arch.heads)) == 1)
        )

    def check(self, arch: Architecture) -> Architecture:
        if not self.contains(arch):
            raise SpecError(f"architecture {arch.key} is not in search space {self.name!r}")
        return arch

    # -- genomes -------------------------------------------------------------------------------------------------
    def gene_choices(self) -> dict[str, tuple[int, ...]]:
        """Every gene's name and choices; the same names for every candidate (see module docstring)."""
        genes: dict[str, tuple[int, ...]] = {"n_layers": self.layers, "d_model": self.d_model}
        for i in range(self.max_layers):
            genes[f"heads_{i}"] = self.heads
        for i in range(self.max_layers):
            genes[f"d_ff_{i}"] = self.d_ff
        return genes

    def from_genes(self, genes: Mapping[str, int]) -> Architecture:
        n = int(genes["n_layers"])
        if self.head_rule == "split":  # one head count for all layers keeps head_dim = d / heads shared
            heads = (int(genes["heads_0"]),) * n
        else:
            heads = tuple(int(genes[f"heads_{i}"]) for i in range(n))
        arch = Architecture(n, int(genes["d_model"]), heads, tuple(int(genes[f"d_ff_{i}"]) for i in range(n)))
        return self.check(arch)

    def to_genes(self, arch: Architecture, fill: Architecture | None = None) -> dict[str, int]:
        """Genes of `arch`; layers beyond its depth copy `fill` (default: its own last layer)."""
        genes = {"n_layers": arch.n_layers, "d_model": arch.d_model}
        for i in range(self.max_layers):
            j = min(i, arch.n_layers - 1)
            genes[f"heads_{i}"] = arch.heads[i] if i < arch.n_layers else (fill.heads[i] if fill else arch.heads[j])
            genes[f"d_ff_{i}"] = arch.d_ff[i] if i < arch.n_layers else (fill.d_ff[i] if fill else arch.d_ff[j])
        return genes

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random genome (so depth is uniform over `layers`)."""
        genes = {name: int(rng.choice(choices)) for name, choices in self.gene_choices().items()}
        return self.from_genes(genes)

    def mutate(self, arch: Architecture, rng: np.random.Generator, prob: float = 0.2) -> Architecture:
        """Resample each gene with probability `prob` (the paper's mutation, digest §6.4)."""
        genes = self.to_genes(arch)
        for name, choices in self.gene_choices().items():
            if rng.random() < prob:
                genes[name] = int(rng.choice(choices))
        return self.from_genes(genes)

    # -- models --------------------------------------------------------------------------------------------------
    def model_spec(self, arch: Architecture) -> ModelSpec:
        """The candidate as a GPT-2-style decoder LM (pre-norm, learned positions, tied LM head)."""
        self.check(arch)
        return ModelSpec(
            name=arch.key,
            family=Family.DECODER,
            n_layers=arch.n_layers,
            d_model=arch.d_model,
            heads=arch.heads,
            kv_heads=arch.heads,
            d_ff=arch.d_ff,
            head_dim=self.head_dim_of(arch),
            activation=Activation.GELU_TANH,
            norm_placement=NormPlacement.PRE,
            vocab_size=self.vocab_size,
            max_positions=self.seq_len,
            final_norm=True,
            lm_head=True,
            tied_embeddings=True,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layers": list(self.layers),
            "heads": list(self.heads),
            "d_model": list(self.d_model),
            "d_ff": list(self.d_ff),
            "head_rule": self.head_rule,
            "head_dim": self.head_dim,
            "seq_len": self.seq_len,
            "vocab_size": self.vocab_size,
        }


def space_from_dict(data: Mapping[str, Any], default_name: str = "custom") -> SearchSpace:
    """A search space from its fields (a parsed YAML mapping: `tstack.spec.nas_space.load_space` reads the file),
    each checked, with a `SpecError` naming the field at fault."""
    known = {"name", "layers", "heads", "d_model", "d_ff", "head_rule", "head_dim", "seq_len", "vocab_size"}
    unknown = set(data) - known
    if unknown:
        names, allowed = ", ".join(sorted(map(repr, unknown))), ", ".join(sorted(known))
        raise SpecError(f"search space: unknown field(s) {names}; known: {allowed}")
    missing = {"layers", "heads", "d_model", "d_ff"} - set(data)
    if missing:
        raise SpecError(f"search space: missing field(s) {', '.join(sorted(missing))}")
    try:
        return SearchSpace(
            name=str(data.get("name", default_name)),
            layers=_values(data["layers"], "layers"),
            heads=_values(data["heads"], "heads"),
            d_model=_values(data["d_model"], "d_model"),
            d_ff=_values(data["d_ff"], "d_ff"),
            head_rule=str(data.get("head_rule", "fixed")),
            head_dim=int(data.get("head_dim", 64)),
            seq_len=int(data.get("seq_len", 512)),
            vocab_size=int(data.get("vocab_size", 50257)),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise SpecError(f"search space: {exc}; head_dim, seq_len and vocab_size are integers") from exc
