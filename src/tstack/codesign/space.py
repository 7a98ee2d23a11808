"""The hardware half of a co-design search: which accelerator parameters may change, and the design each choice is.

A `HardwareSpace` is data: a base design, whose clock, per-access energies, host CPU and cost options every
candidate keeps, and the values of each searched parameter:

- ``pe_rows``, ``pe_cols``: the systolic array;
- ``scratchpad_kib``, ``accumulator_kib``: the two on-chip buffers (their banks, word widths and double buffering
  stay the base's);
- ``l2_kib``: an L2 holding every tensor between the buffers and DRAM, 0 for none;
- ``dram_bytes_per_cycle``: the link out of DRAM (into the L2, else Gemmini's one DMA into both buffers);
- ``onchip_bytes_per_cycle``: the L2 -> buffers link (ignored without an L2);
- ``nonlinear_units``: ``ibert`` keeps the base's normalization and activation units, ``none`` removes them so the
  host runs every nonlinear op (the paper's gemmini-baseline).

A parameter left out keeps the base's value. `HardwareParams` is one choice; `build_design` turns it into a frozen
`Hardware`, whose hash keys every cache downstream. `space_from_dict` validates the parameters of a space document
around a base design the caller has already resolved: reading files and naming presets is the boundary layer's job
(`tstack.spec.codesign.load_hardware_space`), so this module takes the base as a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from tstack.errors import SpecError
from tstack.hardware.area_tables import AreaTables
from tstack.hardware.design import design_of
from tstack.hardware.types import ARRAY, Hardware, Link, MemoryLevel, Tensor

KIB = 1024
_MAX_CHOICES = 256  # values per parameter; a search space is a grid, not a sweep of every integer


class NonlinearUnits(StrEnum):
    """Which special-function units a design has."""

    IBERT = "ibert"  # the base's normalization unit and activation units (the paper's I-BERT hardware)
    NONE = "none"  # none: the host CPU runs every nonlinear op


PARAMETERS = (
    "pe_rows",
    "pe_cols",
    "scratchpad_kib",
    "accumulator_kib",
    "l2_kib",
    "dram_bytes_per_cycle",
    "onchip_bytes_per_cycle",
    "nonlinear_units",
)
_INT_PARAMS = frozenset({"pe_rows", "pe_cols", "scratchpad_kib", "accumulator_kib", "l2_kib"})
_FLOAT_PARAMS = frozenset({"dram_bytes_per_cycle", "onchip_bytes_per_cycle"})
_ZERO_ALLOWED = frozenset({"l2_kib"})

Value = int | float | str


@dataclass(frozen=True, slots=True)
class HardwareParams:
    """One point of a `HardwareSpace`: every parameter's value (sizes in KiB, bandwidths in bytes per cycle)."""

    pe_rows: int
    pe_cols: int
    scratchpad_kib: int
    accumulator_kib: int
    l2_kib: int
    dram_bytes_per_cycle: float
    onchip_bytes_per_cycle: float
    nonlinear_units: NonlinearUnits

    @property
    def key(self) -> str:
        """A stable identity, e.g. ``a16x16-s64-c256-l0-d5-o16-ibert`` (the on-chip link is moot without an L2)."""
        onchip = f"{self.onchip_bytes_per_cycle:g}" if self.l2_kib else "-"
        return (
            f"a{self.pe_rows}x{self.pe_cols}-s{self.scratchpad_kib}-c{self.accumulator_kib}-l{self.l2_kib}"
            f"-d{self.dram_bytes_per_cycle:g}-o{onchip}-{self.nonlinear_units.value}"
        )

    def to_dict(self) -> dict[str, Value]:
        return {name: _plain(getattr(self, name)) for name in PARAMETERS}


def _plain(value: Any) -> Value:
    return value.value if isinstance(value, StrEnum) else value


@dataclass(frozen=True, slots=True)
class L2Energies:
    """Per-byte access energies and banks of an L2 the search adds (the base has none to copy)."""

    read_energy_pj_per_byte: float
    write_energy_pj_per_byte: float
    banks: int = 8


@dataclass(frozen=True, slots=True)
class HardwareSpace:
    """The values each hardware parameter may take, around a base design."""

    name: str
    base: Hardware
    choices: tuple[tuple[str, tuple[Value, ...]], ...]  # (parameter, values) in PARAMETERS order
    l2: L2Energies
    # the component table candidates' energies are priced from (`codesign.evaluate.Energies.TABLE`); the boundary
    # (`tstack.spec.codesign`) gives the area model's default table. Not part of the space's identity.
    tables: AreaTables | None = field(default=None, compare=False)

    def values(self, name: str) -> tuple[Value, ...]:
        return dict(self.choices)[name]

    @property
    def size(self) -> int:
        n = 1
        for _, values in self.choices:
            n *= len(values)
        return n

    def params(self, genes: Mapping[str, Value]) -> HardwareParams:
        """The parameters from a mapping of parameter name to value (Optuna's trial params)."""
        unknown = set(genes) - set(PARAMETERS)
        if unknown:
            raise SpecError(
                f"unknown hardware parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(PARAMETERS)}"
            )
        values: dict[str, Any] = {}
        for name, choices in self.choices:
            value = genes.get(name, choices[0] if len(choices) == 1 else None)
            if value is None or value not in choices:
                raise SpecError(f"hardware parameter {name}={value!r} is not in space {self.name!r}: {list(choices)}")
            values[name] = value
        values["nonlinear_units"] = NonlinearUnits(values["nonlinear_units"])
        return HardwareParams(**values)

    def base_params(self) -> HardwareParams:
        """The base design's own parameters (the paper's hand-made point), whether or not the space contains them."""
        d = design_of(self.base)
        l2_kib = 0 if d.l2 is None else d.l2.capacity_bytes // KIB
        onchip = d.scratchpad_fill_bytes_per_cycle  # without an L2 the on-chip link is moot: any value does
        if d.l2 is None and self.choices:
            onchip = float(self.values("onchip_bytes_per_cycle")[0])
        # the I-BERT hardware's mark is its normalization unit (gemmini-baseline has only a ReLU/pooling engine)
        units = NonlinearUnits.IBERT if self.base.normalization is not None else NonlinearUnits.NONE
        return HardwareParams(
            self.base.pe.rows,
            self.base.pe.cols,
            d.scratchpad.capacity_bytes // KIB,
            d.accumulator.capacity_bytes // KIB,
            l2_kib,
            d.dram_bytes_per_cycle,
            float(onchip),
            units,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base.name,
            "parameters": {name: [_plain(v) for v in values] for name, values in self.choices},
            "l2": {
                "read_energy_pj_per_byte": self.l2.read_energy_pj_per_byte,
                "write_energy_pj_per_byte": self.l2.write_energy_pj_per_byte,
                "banks": self.l2.banks,
            },
        }


def build_design(space: HardwareSpace, params: HardwareParams) -> Hardware:
    """The base design with `params` applied: array, buffer sizes, an optional L2, link bandwidths, SFUs."""
    base = space.base
    d = design_of(base)
    if d.l2 is not None:
        raise SpecError(f"codesign base design {base.name!r} has an L2 already; start from a design without one")
    if d.shared_buffer:
        raise SpecError(f"codesign base design {base.name!r} shares one buffer; it needs a separate accumulator")
    spad = replace(d.scratchpad, capacity_bytes=params.scratchpad_kib * KIB)
    acc = replace(d.accumulator, capacity_bytes=params.accumulator_kib * KIB)
    array_links = tuple(link for link in d.all_links if ARRAY in link.children)  # operand read ports stay
    inner = (acc, spad) if d.memories[0] is d.accumulator else (spad, acc)
    if params.l2_kib:
        l2 = MemoryLevel(
            "l2",
            params.l2_kib * KIB,
            space.l2.read_energy_pj_per_byte,
            space.l2.write_energy_pj_per_byte,
            frozenset(Tensor),
            banks=space.l2.banks,
        )
        levels: tuple[MemoryLevel, ...] = (*inner, l2, d.dram)
        links: tuple[Link, ...] = (
            Link(d.dram.name, ("l2",), params.dram_bytes_per_cycle),
            Link("l2", (spad.name, acc.name), params.onchip_bytes_per_cycle),
        )
    else:
        levels = (*inner, d.dram)
        links = (Link(d.dram.name, (spad.name, acc.name), params.dram_bytes_per_cycle),)
    units = params.nonlinear_units is NonlinearUnits.IBERT
    return replace(
        base,
        name=f"{space.name}:{params.key}",
        pe=replace(base.pe, rows=params.pe_rows, cols=params.pe_cols),
        levels=levels,
        links=links + array_links,
        normalization=base.normalization if units else None,
        activations=base.activations if units else None,
        description=f"{base.name} with {params.key} ({space.name} co-design space)",
    )


# -- loading ------------------------------------------------------------------------------------------------------
def _choices(name: str, raw: Any) -> tuple[Value, ...]:
    where = f"codesign space parameter {name!r}"
    if name == "nonlinear_units":
        items = raw if isinstance(raw, list) else [raw]
        known = [u.value for u in NonlinearUnits]
        bad = [v for v in items if v not in known]
        if bad:
            raise SpecError(f"{where}: unknown value(s) {bad}; choose from {known}")
        values: tuple[Value, ...] = tuple(dict.fromkeys(str(v) for v in items))
    elif isinstance(raw, Mapping):
        try:
            start, stop, step = (float(raw[k]) for k in ("start", "stop", "step"))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"{where}: a range needs numeric start, stop and step") from exc
        if step <= 0 or stop < start:
            raise SpecError(
                f"{where}: the range {start:g}..{stop:g} step {step:g} is empty; need step > 0, stop >= start"
            )
        if (stop - start) / step >= _MAX_CHOICES:
            raise SpecError(f"{where}: the range has more than {_MAX_CHOICES} values; raise step or narrow it")
        n = int((stop - start) / step + 1e-9) + 1
        values = tuple(_number(name, start + i * step) for i in range(n))
    elif isinstance(raw, list):
        values = tuple(sorted({_number(name, v) for v in raw}))
    else:
        raise SpecError(f"{where}: give a list of values or {{start, stop, step}}")
    if not values:
        raise SpecError(f"{where}: the list of values is empty; give at least one")
    return values


def _number(name: str, raw: Any) -> int | float:
    where = f"codesign space parameter {name!r}"
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise SpecError(f"{where}: {raw!r} is not a number")
    lowest = 0 if name in _ZERO_ALLOWED else 1e-300
    if not raw >= lowest or raw == float("inf"):
        raise SpecError(f"{where}: {raw!r} must be {'>= 0' if name in _ZERO_ALLOWED else 'positive'} and finite")
    if name in _INT_PARAMS:
        if float(raw) != int(raw):
            raise SpecError(f"{where}: {raw!r} must be a whole number")
        return int(raw)
    return float(raw)


SPACE_FIELDS = frozenset({"name", "base", "parameters", "l2"})  # the fields of a space document
_L2_FIELDS = frozenset({"read_energy_pj_per_byte", "write_energy_pj_per_byte", "banks"})


def space_from_dict(
    data: Mapping[str, Any], base: Hardware, default_name: str = "custom", tables: AreaTables | None = None
) -> HardwareSpace:
    """A validated space from a space document around `base` (see the module docstring for the parameters), its
    candidates' energies priced from the component table `tables`.

    The document's ``base`` field, if any, names the design the caller resolved into `base`; it is not read here."""
    unknown = set(data) - SPACE_FIELDS
    if unknown:
        raise SpecError(
            f"codesign space: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(SPACE_FIELDS))}"
        )
    raw_params = data.get("parameters")
    if not isinstance(raw_params, Mapping) or not raw_params:
        raise SpecError("codesign space: `parameters` must map hardware parameters to their values")
    bad = [str(k) for k in raw_params if k not in PARAMETERS]
    if bad:
        raise SpecError(f"codesign space: unknown parameter(s) {', '.join(bad)}; known: {', '.join(PARAMETERS)}")
    l2_raw = data.get("l2") or {}
    if not isinstance(l2_raw, Mapping) or set(l2_raw) - _L2_FIELDS:
        raise SpecError(f"codesign space: `l2` takes {', '.join(sorted(_L2_FIELDS))}")
    d = design_of(base)
    try:
        l2 = L2Energies(
            float(l2_raw.get("read_energy_pj_per_byte", d.scratchpad.read_energy_pj_per_byte)),
            float(l2_raw.get("write_energy_pj_per_byte", d.scratchpad.write_energy_pj_per_byte)),
            int(l2_raw.get("banks", 8)),
        )
    except (TypeError, ValueError) as exc:
        raise SpecError(f"codesign space: l2 energies and banks must be numbers ({exc})") from None
    space = HardwareSpace(str(data.get("name", default_name)), base, (), l2, tables)
    base_params = space.base_params()
    choices = tuple(
        (name, _choices(name, raw_params[name]) if name in raw_params else (_plain(getattr(base_params, name)),))
        for name in PARAMETERS
    )
    return replace(space, choices=choices)
