"""Hardware cost of NAS candidates (latency, energy, EDP) from tstack's simulator, through a lookup table.

The paper prices candidates with a per-operation lookup table filled by Timeloop (digest §6.4); this is the same
idea on tstack's simulator. A candidate's workload is cut into parts whose costs depend on one or two of its genes:

- ``base[d]``: the embeddings, the final norm and (optionally) the LM head;
- ``attn[d, h]``: one layer's attention norm, Q/K/V projections, Q x K^T, Softmax, scores x V, output projection
  and residual add;
- ``ffn[d, d_ff]``: one layer's FFN norm, up projection, activation, down projection and residual add.

A candidate costs ``base[d] + sum over its layers of attn[d, h_i] + ffn[d, d_ff_i]``. This is exact, not an
approximation, because the simulator's per-op decisions (fusing a Softmax/LayerNorm into the matmul before it,
de/requantizing around host ops) look only at an op's immediate neighbours, and every part boundary sits between two
non-matmul ops (residual add | norm), whose costs do not depend on each other. That argument is checked, not
trusted: building a table simulates the largest and smallest candidates end to end and refuses a table that does not
reproduce them, and the tests compare many random heterogeneous candidates with `tstack.api.simulate`.

Phase: the default is ``prefill`` at the space's sequence length, i.e. the causal forward pass over all l tokens at
once. That is the computation perplexity is measured on (teacher forcing over a whole sequence); the paper does not
say which phase or length its NAS priced (digest §6.4), and ``generate`` (l decoding steps with a KV cache) is
available. The LM head is left out by default, as `tstack.api.simulate` and the paper's per-layer op tables do.

Tables are cached on disk keyed by the space, the hardware (its full description), sequence length, phase, LM head,
mapper and a digest of the cost model's source, so editing the simulator invalidates them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from tstack.errors import SpecError, TstackError
from tstack.fileio import clean_stale_temp, write_atomic
from tstack.hardware.types import Hardware
from tstack.nas.space import Architecture, SearchSpace
from tstack.workload.identity import Block
from tstack.workload.model import ModelSpec
from tstack.workload.ops import Phase

DEFAULT_HARDWARE = "gemmini-ibert"  # the preset `tstack.api.price_table` prices on unless told
DEFAULT_PHASE = Phase.PREFILL
_TABLE_FORMAT = 1
# the cost model's code: a table built by another version of these is stale
_MODEL_PACKAGES = ("simulate", "mapping", "workload", "hardware")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class HardwareCost:
    """One candidate's cost on the priced hardware at the priced sequence length and phase."""

    latency_cycles: float
    energy_pj: float

    @property
    def edp(self) -> float:
        """Energy-delay product in pJ x cycles (as `ModelResult.edp`)."""
        return self.energy_pj * self.latency_cycles


@dataclass(frozen=True, slots=True)
class CostArrays:
    """Costs of many candidates at once, aligned with the rows of the gene-index array priced."""

    latency_cycles: FloatArray
    energy_pj: FloatArray

    @property
    def edp(self) -> FloatArray:
        return self.energy_pj * self.latency_cycles


def _canonical(value: Any) -> Any:
    """A JSON-able form that is the same in every process (frozenset order depends on string hashing)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if isinstance(value, frozenset | set):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, float):
        return repr(value)
    return value


def _model_digest() -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    files = sorted(p for pkg in _MODEL_PACKAGES for p in (root / pkg).rglob("*.py"))
    for path in [*files, Path(__file__).resolve()]:
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tstack/nas`` (``~/.cache/tstack/nas``), read when a table is built, not at import."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tstack" / "nas"


def _parse_phase(phase: str | Phase) -> Phase:
    try:
        the_phase = Phase(phase)
    except ValueError:
        raise SpecError(f"unknown phase {phase!r}; a decoder LM is priced in prefill, generate or decode") from None
    if the_phase is Phase.ENCODER:
        raise SpecError("NAS candidates are decoder LMs; price them with --phase prefill (default) or generate")
    return the_phase


@dataclass(frozen=True, slots=True, eq=False)
class PriceTable:
    """Per-part costs over a space's choices; index order follows the space's tuples of choices.

    ``attn_*`` have shape (len(d_model), len(heads)), ``ffn_*`` (len(d_model), len(d_ff)), ``base_*`` (len(d_model),).
    """

    space: SearchSpace
    hardware: str
    seq_len: int
    phase: Phase
    lm_head: bool
    mapper: str
    key: str
    base_latency_cycles: FloatArray
    base_energy_pj: FloatArray
    attn_latency_cycles: FloatArray
    attn_energy_pj: FloatArray
    ffn_latency_cycles: FloatArray
    ffn_energy_pj: FloatArray
    # value -> index maps of (d_model, heads, d_ff) and the tables as Python lists, for pricing one candidate fast
    _lookup: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sp = self.space
        maps = tuple({v: i for i, v in enumerate(values)} for values in (sp.d_model, sp.heads, sp.d_ff))
        lists = tuple(getattr(self, name).tolist() for name in _ARRAYS)
        object.__setattr__(self, "_lookup", (*maps, *lists))

    # -- candidates as gene indices --------------------------------------------------------------------------
    def gene_indices(self, archs: Sequence[Architecture]) -> IntArray:
        """Rows of (layers index, d index, heads index per layer, d_ff index per layer) for the largest depth.

        Layers beyond a candidate's depth get index 0; pricing masks them out."""
        sp = self.space
        n_max = sp.max_layers
        li = {v: i for i, v in enumerate(sp.layers)}
        di = {v: i for i, v in enumerate(sp.d_model)}
        hi = {v: i for i, v in enumerate(sp.heads)}
        fi = {v: i for i, v in enumerate(sp.d_ff)}
        out = np.zeros((len(archs), 2 + 2 * n_max), dtype=np.int64)
        try:
            for row, a in enumerate(archs):
                out[row, 0] = li[a.n_layers]
                out[row, 1] = di[a.d_model]
                out[row, 2 : 2 + a.n_layers] = [hi[h] for h in a.heads]
                out[row, 2 + n_max : 2 + n_max + a.n_layers] = [fi[f] for f in a.d_ff]
        except KeyError as exc:
            raise SpecError(f"architecture {archs[row].key} is not in search space {sp.name!r}") from exc
        return out

    def price_indices(self, idx: IntArray) -> CostArrays:
        """Costs of the candidates whose gene indices are the rows of `idx` (vectorized: no Python loop)."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.ndim != 2 or idx.shape[1] != 2 + 2 * self.space.max_layers:
            raise SpecError(f"gene indices must have shape (n, {2 + 2 * self.space.max_layers}), got {idx.shape}")
        n_max = self.space.max_layers
        depth = np.asarray(self.space.layers, dtype=np.int64)[idx[:, 0]]
        d = idx[:, 1]
        heads = idx[:, 2 : 2 + n_max]
        if self.space.head_rule == "split":  # one head count for all layers (SearchSpace.from_genes)
            heads = np.repeat(heads[:, :1], n_max, axis=1)
        ffn = idx[:, 2 + n_max :]
        live = np.arange(n_max)[None, :] < depth[:, None]
        rows = d[:, None]
        latency = self.base_latency_cycles[d] + np.where(
            live, self.attn_latency_cycles[rows, heads] + self.ffn_latency_cycles[rows, ffn], 0.0
        ).sum(axis=1)
        energy = self.base_energy_pj[d] + np.where(
            live, self.attn_energy_pj[rows, heads] + self.ffn_energy_pj[rows, ffn], 0.0
        ).sum(axis=1)
        return CostArrays(latency, energy)

    def price_many(self, archs: Sequence[Architecture]) -> CostArrays:
        return self.price_indices(self.gene_indices(archs))

    def price(self, arch: Architecture) -> HardwareCost:
        """One candidate's cost: the same sum as `price_indices`, over Python lists (a few microseconds)."""
        self.space.check(arch)
        di, hi, fi, base_lat, base_en, attn_lat, attn_en, ffn_lat, ffn_en = self._lookup
        d = di[arch.d_model]
        latency, energy = base_lat[d], base_en[d]
        for h, f in zip(arch.heads, arch.d_ff, strict=True):
            latency += attn_lat[d][hi[h]] + ffn_lat[d][fi[f]]
            energy += attn_en[d][hi[h]] + ffn_en[d][fi[f]]
        return HardwareCost(float(latency), float(energy))

    # -- persistence ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _TABLE_FORMAT,
            "key": self.key,
            "space": self.space.to_dict(),
            "hardware": self.hardware,
            "seq_len": self.seq_len,
            "phase": self.phase.value,
            "lm_head": self.lm_head,
            "mapper": self.mapper,
            **{name: getattr(self, name).tolist() for name in _ARRAYS},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], space: SearchSpace) -> PriceTable:
        arrays = {name: np.asarray(data[name], dtype=np.float64) for name in _ARRAYS}
        return cls(
            space=space,
            hardware=str(data["hardware"]),
            seq_len=int(data["seq_len"]),
            phase=Phase(data["phase"]),
            lm_head=bool(data["lm_head"]),
            mapper=str(data["mapper"]),
            key=str(data["key"]),
            **arrays,
        )


_ARRAYS = (
    "base_latency_cycles",
    "base_energy_pj",
    "attn_latency_cycles",
    "attn_energy_pj",
    "ffn_latency_cycles",
    "ffn_energy_pj",
)


def table_key(space: SearchSpace, hw: Hardware, seq_len: int, phase: Phase, lm_head: bool, mapper: str) -> str:
    """The on-disk identity of a table: everything its numbers depend on, including the cost model's code."""
    doc = {
        "format": _TABLE_FORMAT,
        "space": space.to_dict(),
        "hardware": _canonical(hw),
        "seq_len": seq_len,
        "phase": phase.value,
        "lm_head": lm_head,
        "mapper": mapper,
        "model": _model_digest(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


# -- building ----------------------------------------------------------------------------------------------------
Progress = Any  # Callable[[int, int], None]: (done, total); the CLI renders it


class PriceTableOptions(TypedDict, total=False):
    """The keyword options of `build_price_table` (meanings and defaults there), as one type so that a façade that
    resolves the other arguments (`tstack.api.price_table`) passes them through with `**options` instead of
    restating them."""

    lm_head: bool
    mapper: str
    cache_dir: Path | None
    use_cache: bool
    progress: Progress | None


@dataclass(frozen=True, slots=True)
class _Parts:
    base: tuple[float, float]
    attn: dict[int, tuple[float, float]]  # layer -> (latency_cycles, energy_pj)
    ffn: dict[int, tuple[float, float]]


def _simulate_parts(spec: ModelSpec, hw: Hardware, seq_len: int, phase: Phase, lm_head: bool, mapper: str) -> _Parts:
    from tstack.mapping.matmul.mappers import parse_mapper
    from tstack.simulate import simulate_workload
    from tstack.workload import build_workload

    result = simulate_workload(
        build_workload(spec, seq_len, phase=phase, lm_head=lm_head), hw, mapper=parse_mapper(mapper)
    )
    base = [0.0, 0.0]
    attn: dict[int, list[float]] = {}
    ffn: dict[int, list[float]] = {}
    layer_parts = {Block.ATTENTION: attn, Block.FFN: ffn}
    for op, cost in zip(result.workload.ops, result.ops, strict=True):
        if op.layer is None:  # embeddings, final norm, LM head: outside the layers, they depend on d alone
            acc = base
        elif op.block in layer_parts:
            acc = layer_parts[op.block].setdefault(op.layer, [0.0, 0.0])
        else:  # a workload-builder change that this decomposition does not know: refuse rather than misprice
            raise TstackError(f"NAS pricing does not know where op {op.name!r} belongs; update tstack.nas.pricing")
        acc[0] += cost.latency_cycles
        acc[1] += cost.energy_pj
    return _Parts(
        (base[0], base[1]),
        {k: (v[0], v[1]) for k, v in attn.items()},
        {k: (v[0], v[1]) for k, v in ffn.items()},
    )


def _close(a: tuple[float, float], b: tuple[float, float], rtol: float = 1e-12) -> bool:
    return all(math.isclose(x, y, rel_tol=rtol, abs_tol=0.0) for x, y in zip(a, b, strict=True))


def _probes(space: SearchSpace, d: int) -> list[ModelSpec]:
    """Models whose layers together cover every (heads, d_ff) choice at width d, so a few simulations fill the table.

    With fixed-width heads one model does (heterogeneous layers); with head_dim = d / heads each head count needs
    its own model, since head_dim is shared by all layers of a ModelSpec."""
    n0, f0 = space.layers[0], space.d_ff[0]
    if space.head_rule == "fixed":
        n = max(len(space.heads), len(space.d_ff))
        groups = [tuple(space.heads[i % len(space.heads)] for i in range(n))]
    else:
        n = len(space.d_ff)
        groups = [(h,) * n for h in space.heads]
    specs = []
    for heads in groups:
        template = space.model_spec(Architecture(n0, d, (heads[0],) * n0, (f0,) * n0))
        d_ff = tuple(space.d_ff[i % len(space.d_ff)] for i in range(n))
        specs.append(
            dataclasses.replace(template, name=f"nas-probe-d{d}", n_layers=n, heads=heads, kv_heads=heads, d_ff=d_ff)
        )
    return specs


def _fill(
    space: SearchSpace,
    hw: Hardware,
    seq_len: int,
    phase: Phase,
    lm_head: bool,
    mapper: str,
    key: str,
    progress: Progress | None,
) -> PriceTable:
    n_d, n_h, n_f = len(space.d_model), len(space.heads), len(space.d_ff)
    base = np.full((n_d, 2), np.nan)
    attn = np.full((n_d, n_h, 2), np.nan)
    ffn = np.full((n_d, n_f, 2), np.nan)
    probes = [(di, spec) for di, d in enumerate(space.d_model) for spec in _probes(space, d)]
    for done, (di, spec) in enumerate(probes):
        parts = _simulate_parts(spec, hw, seq_len, phase, lm_head, mapper)
        cells = [(base[di], parts.base)]
        for layer in range(spec.n_layers):
            cells.append((attn[di, space.heads.index(spec.heads[layer])], parts.attn[layer]))
            cells.append((ffn[di, space.d_ff.index(spec.d_ff[layer])], parts.ffn[layer]))
        for cell, value in cells:
            # the same part seen twice (another layer position, another probe) must cost the same, or the
            # decomposition's premise (a part's cost depends only on its own genes) is false
            if not np.isnan(cell[0]) and not _close((float(cell[0]), float(cell[1])), value):
                raise TstackError(
                    f"NAS pricing: a layer part costs differently at another position ({value} vs {tuple(cell)}); "
                    "the simulator now couples layers, so the lookup table would be wrong"
                )
            cell[:] = value
        if progress is not None:
            progress(done + 1, len(probes) + 2)
    table = PriceTable(
        space, hw.name, seq_len, phase, lm_head, mapper, key,
        base[:, 0].copy(), base[:, 1].copy(), attn[..., 0].copy(), attn[..., 1].copy(),
        ffn[..., 0].copy(), ffn[..., 1].copy(),
    )  # fmt: skip
    for step, arch in enumerate((space.largest(), space.smallest())):
        _verify(table, arch, hw)
        if progress is not None:
            progress(len(probes) + 1 + step, len(probes) + 2)
    return table


def _verify(table: PriceTable, arch: Architecture, hw: Hardware) -> None:
    """Price `arch` from the table and by simulating it whole; refuse the table if they differ."""
    from tstack.mapping.matmul.mappers import parse_mapper
    from tstack.simulate import simulate_workload
    from tstack.workload import build_workload

    spec = table.space.model_spec(arch)
    wl = build_workload(spec, table.seq_len, phase=table.phase, lm_head=table.lm_head)
    whole = simulate_workload(wl, hw, mapper=parse_mapper(table.mapper))
    priced = table.price(arch)
    if not _close((priced.latency_cycles, priced.energy_pj), (whole.latency_cycles, whole.energy_pj), 1e-9):
        raise TstackError(
            f"NAS pricing: the lookup table gives {priced.latency_cycles:.6g} cycles for {arch.key} but the "
            f"simulator gives {whole.latency_cycles:.6g}; the per-layer decomposition no longer holds"
        )


def build_price_table(
    space: SearchSpace,
    hardware: Hardware,
    seq_len: int | None = None,
    phase: str | Phase = DEFAULT_PHASE,
    *,
    lm_head: bool = False,
    mapper: str = "gemmini",
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> PriceTable:
    """The lookup table of `space` on the design `hardware` at `seq_len` (default: the space's) and `phase` (default
    prefill; see the module docstring), from the disk cache when it has it. A preset name or a hardware file is
    resolved by the caller (`tstack.api.price_table` takes either, `DEFAULT_HARDWARE` by default)."""
    hw = hardware
    the_phase = _parse_phase(phase)
    seq = space.seq_len if seq_len is None else int(seq_len)
    if seq <= 0:
        raise SpecError(f"sequence length must be a positive integer, got {seq}")
    key = table_key(space, hw, seq, the_phase, lm_head, mapper)
    path = (cache_dir or default_cache_dir()) / f"price-{key}.json"
    if use_cache and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") == key and data.get("format") == _TABLE_FORMAT:
                return PriceTable.from_dict(data, space)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is rebuilt below
    table = _fill(space, hw, seq, the_phase, lm_head, mapper, key, progress)
    if use_cache:
        clean_stale_temp(path.parent)  # a killed run's half-written entry
        with contextlib.suppress(OSError, TstackError):  # an unwritable cache only costs the next run a rebuild
            write_atomic(path, json.dumps(table.to_dict()))
    return table
