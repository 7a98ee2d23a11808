"""How far the Gemmini case study's speedup moves with each input that is not measured (issue 16, point 3).

The co-designed speedup (baseline latency / target latency, `tstack.simulate` on both designs) is recomputed as each
remaining assumption moves over its plausible range, one at a time (a tornado), around two configurations:

* `predicted`: the designs as shipped (gemmini-baseline, gemmini-ibert), with the host and the DMA predicted from the
  hardware's own description (the host from measured instruction counts priced by the in-order Rocket model,
  `tstack.simulate.host_model`; the DMA by Little's law under the SoC's buses, `tstack.hardware.dma_model`): no
  constant fitted to a case-study figure (benchmarks/RESULTS-case-study.md);
* `calibrated`: the same designs with the two inputs of the `-calibrated` presets, fitted to the paper (the DMA link
  at 5 B/cycle, fitted to Fig. 13; the host's per-element costs, fitted to Fig. 14 with a 1.86% matmul share).

The inputs and their ranges (each row's `kind` says whether it is calibrated, predicted, assumed or an option):

* DMA bandwidth, 3 to 16 B/cycle (16 = the 128-bit DMA port; 5 calibrated, 7.7 predicted), on both designs' link;
* the host's absolute speed: every host cost scaled by the factor that moves the calibrated host from its 1.86%
  matmul share to the paper's two values, 1.06% (Fig. 14) and 3.2% (implied by 39.6x with 87% matmul time);
* the host's per-element costs: calibrated (Fig. 14 fit) or predicted (Rocket model), swapped as a whole;
* the assumed figures of the predictions (RESULTS-case-study.md, "what remains"): the SoC path of a DRAM round trip
  20-60 cycles and the DRAM open-row hit rate 0.5-1.0 (both move the DMA's bandwidth and the host's miss latency,
  which share that round trip), the branch mispredict penalty 2-4 cycles, the FP-to-int latency 2-3 cycles;
* Gemmini's software options `skip_one_trip_loops` and `weights_stay_in_array` (`cost_options`), off or on.

Rows that only exist in a prediction (the round trip, the Rocket core's figures) move the `predicted` configuration
only. A pure data function: no printing; a few dozen `simulate` calls of a few tens of milliseconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tstack import api
from tstack.errors import SpecError
from tstack.hardware.design import design_of
from tstack.hardware.dma_model import FIRESIM_DDR3, GEMMINI_DMA, MemoryLatency, predict_dma
from tstack.hardware.types import Hardware, HostCPU
from tstack.simulate.engine import matmul_shapes
from tstack.simulate.host_model import RocketTiming
from tstack.spec.hardware import load_hardware
from tstack.spec.host import predicted_host
from tstack.workload.ops import OpKind

#: the matmul share of baseline latency the calibrated host was fitted with (gemmini-baseline-calibrated.yaml)
CALIBRATED_MATMUL_SHARE = 0.0186
#: the paper's two values for it: Fig. 14's 1% renormalized (its labels sum to 94), and the 3.2% that 39.6x with 87%
#: matmul time after co-design implies under tstack's model
PAPER_MATMUL_SHARES = (0.0106, 0.032)
#: the DMA bandwidth range, B/cycle: well below the calibrated 5 up to the 128-bit bus's peak
DMA_RANGE = (3.0, 16.0)
SOC_RANGE = (20.0, 60.0)
ROW_HIT_RANGE = (0.5, 1.0)
MISPREDICT_RANGE = (2.0, 4.0)
FP_TO_INT_RANGE = (2, 3)
LINK = ("dram", "scratchpad")

Transform = Callable[[Hardware], Hardware]


def host_scale_for(matmul_share: float) -> float:
    """The factor on every host cost that moves the calibrated host from its 1.86% matmul share to `matmul_share`
    (`calibrate_host` sets each cost to share x (1 - m) / m times a constant, so rescaling is exact)."""
    odds = (1 - matmul_share) / matmul_share
    return odds / ((1 - CALIBRATED_MATMUL_SHARE) / CALIBRATED_MATMUL_SHARE)


def write_fraction(model: str, hw: Hardware, seq: int) -> float:
    """Share of the design's matmul DRAM bytes that are outputs (`mvout`), the rest being `mvin` reads."""
    r = api.simulate(model, hw, seq)
    out = total = 0.0
    for o, op in zip(r.ops, r.workload.ops, strict=True):
        if op.kind is not OpKind.MATMUL:
            continue
        total += o.dram_bytes
        out += sum(s.batch * s.m * s.n for s in matmul_shapes(op)) * (hw.nonlinear_input_bits / 8)
    return out / total if total else 0.0


def _host(hw: Hardware) -> HostCPU:
    if hw.host is None:
        raise SpecError(f"hardware {hw.name!r} has no host CPU: the host's assumptions do not apply")
    return hw.host


def _scaled(host: HostCPU, factor: float) -> HostCPU:
    return dataclasses.replace(
        host,
        cycles_per_element=tuple((op, c * factor) for op, c in host.cycles_per_element),
        dequantize_cycles_per_element=host.dequantize_cycles_per_element * factor,
        requantize_cycles_per_element=host.requantize_cycles_per_element * factor,
    )


def _timing(memory: MemoryLatency = FIRESIM_DDR3, **changes: Any) -> RocketTiming:
    fp_to_int = changes.pop("fp_to_int", None)
    t = RocketTiming(miss_latency=memory.latency_cycles, **changes)
    if fp_to_int is not None:
        t = dataclasses.replace(t, latency=tuple((k, fp_to_int if k == "fp_to_int" else v) for k, v in t.latency))
    return t


@dataclass(frozen=True, slots=True)
class _Base:
    """A configuration the rows move around: a transform of the shipped designs, and what its inputs are."""

    name: str
    host: str  # "calibrated" or "predicted"
    dma_bytes_per_cycle: float | None  # None: each design keeps its own link (the presets' predicted DMA)
    write_fraction: float
    calibrated_hosts: tuple[HostCPU, HostCPU]

    def designs(
        self,
        base: Hardware,
        target: Hardware,
        *,
        host: str | None = None,
        timing: RocketTiming | None = None,
        dma: float | None = None,
        host_factor: float = 1.0,
        options: dict[str, Any] | None = None,
    ) -> tuple[Hardware, Hardware]:
        out = []
        for hw, calibrated in zip((base, target), self.calibrated_hosts, strict=True):
            kind = host or self.host
            h = calibrated if kind == "calibrated" else predicted_host(calibrated, timing).host
            hw = dataclasses.replace(hw, host=_scaled(h, host_factor) if host_factor != 1.0 else h)
            bandwidth = self.dma_bytes_per_cycle if dma is None else dma
            if bandwidth is not None:
                hw = hw.with_link(*LINK, bandwidth)
            if options:
                hw = dataclasses.replace(hw, cost_options=dataclasses.replace(hw.cost_options, **options))
            out.append(hw)
        return out[0], out[1]


def _option_setter(
    designs: Callable[..., tuple[Hardware, Hardware]], option: str
) -> Callable[[_Base, Any], tuple[Hardware, Hardware]]:
    return lambda b, v: designs(b, options={option: v})


def _point(model: str, seq: int, designs: tuple[Hardware, Hardware], value: Any, label: str) -> dict[str, Any]:
    b = api.simulate(model, designs[0], seq)
    t = api.simulate(model, designs[1], seq)
    return {
        "value": value,
        "label": label,
        "speedup": b.latency_cycles / t.latency_cycles,
        "baseline_matmul_share": b.by_category()["matmul"] / b.latency_cycles,
    }


@dataclass
class _Tornado:
    """The configurations the rows move around, and the rows as they are made."""

    model: str
    seq: int
    base_hw: Hardware
    target_hw: Hardware
    bases: dict[str, _Base]
    write_fraction: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reference = {name: _point(self.model, self.seq, self.designs(b), None, "reference")
                          for name, b in self.bases.items()}  # fmt: skip

    def designs(self, b: _Base, **kw: Any) -> tuple[Hardware, Hardware]:
        return b.designs(self.base_hw, self.target_hw, **kw)

    def dma_for(self, memory: MemoryLatency) -> float:
        return predict_dma(GEMMINI_DMA, memory, output_bytes=1).effective(self.write_fraction)

    def memory_row(self, b: _Base, memory: MemoryLatency) -> tuple[Hardware, Hardware]:
        return self.designs(b, timing=_timing(memory), dma=self.dma_for(memory))

    def row(
        self,
        key: str,
        label: str,
        kind: str,
        note: str,
        points: list[tuple[Any, str]],
        make: Callable[[_Base, Any], tuple[Hardware, Hardware]],
        reference_value: dict[str, tuple[Any, str]],
        on: tuple[str, ...] = ("predicted", "calibrated"),
    ) -> None:
        per_base: dict[str, Any] = {}
        for name in on:
            pts = [_point(self.model, self.seq, make(self.bases[name], v), v, lab) for v, lab in points]
            speedups = [p["speedup"] for p in pts] + [self.reference[name]["speedup"]]
            value, vlabel = reference_value[name]
            per_base[name] = {
                "points": pts,
                "reference_value": value,
                "reference_label": vlabel,
                "min_speedup": min(speedups),
                "max_speedup": max(speedups),
            }
        self.rows.append({"key": key, "label": label, "kind": kind, "note": note, "bases": per_base})


def _input_rows(t: _Tornado, shipped_dma: float, calibrated_dma: float) -> None:
    """The two inputs that are predicted in the presets and calibrated in the -calibrated presets."""
    predicted_dma = t.dma_for(FIRESIM_DDR3)  # for this model's traffic; the presets carry BERT-Base l = 512's
    t.row(
        "dma_bandwidth",
        "DMA bandwidth (B/cycle)",
        "predicted / calibrated",
        f"predicted {shipped_dma:.2f} B/cycle by Little's law under the 64-bit memory bus (dma_model; "
        f"{predicted_dma:.2f} for this model's read/write mix); calibrated "
        f"{calibrated_dma:g} B/cycle fitted to Fig. 13; 16 = the 128-bit DMA port",
        [(v, f"{v:g} B/cycle") for v in DMA_RANGE],
        lambda b, v: t.designs(b, dma=v),
        {
            "predicted": (shipped_dma, f"{shipped_dma:.2f} B/cycle"),
            "calibrated": (calibrated_dma, f"{calibrated_dma:g} B/cycle"),
        },
    )
    lo_f, hi_f = (host_scale_for(s) for s in PAPER_MATMUL_SHARES)
    t.row(
        "host_speed",
        "host speed (every host cost scaled)",
        "predicted / calibrated",
        "the calibrated host's 1.86% matmul share (geometric mean of the paper's two) moved to the paper's 1.06% "
        f"(costs x{lo_f:.2f}) and 3.2% (x{hi_f:.2f}); the same factors on the predicted host",
        [(lo_f, f"x{lo_f:.2f} (1.06%)"), (hi_f, f"x{hi_f:.2f} (3.2%)")],
        lambda b, v: t.designs(b, host_factor=v),
        {"predicted": (1.0, "x1 (Rocket model)"), "calibrated": (1.0, "x1 (1.86%)")},
    )
    t.row(
        "host_costs",
        "host per-element costs",
        "calibrated / predicted",
        "calibrated: fitted to Fig. 14's shares (calibrate_host); predicted: measured RV64GC instruction counts priced "
        "by the in-order Rocket model (host_model)",
        [("calibrated", "calibrated"), ("predicted", "predicted")],
        lambda b, v: t.designs(b, host=v),
        {"predicted": ("predicted", "predicted"), "calibrated": ("calibrated", "calibrated")},
    )


def _assumption_rows(t: _Tornado) -> None:
    """The assumed figures of the two predictions: they move the predicted configuration only."""
    t.row(
        "soc_latency",
        "SoC path of a DRAM round trip (cycles)",
        "assumed",
        "TLB, system bus and L2 traversal, taken as ccbench's ~30-cycle L2 hit; moves the DMA (Little's law) and the "
        "host's miss latency together",
        [(v, f"{v:g} cycles") for v in SOC_RANGE],
        lambda b, v: t.memory_row(b, dataclasses.replace(FIRESIM_DDR3, soc_cycles=v)),
        {"predicted": (FIRESIM_DDR3.soc_cycles, f"{FIRESIM_DDR3.soc_cycles:g} cycles")},
        on=("predicted",),
    )
    t.row(
        "row_hit_rate",
        "DRAM open-row hit rate",
        "assumed",
        "row-by-row mvin inside an 8 KiB DRAM page (FASED DDR3 FR-FCFS, open page); moves the DMA and the host's "
        "misses together",
        [(v, f"{v:g}") for v in ROW_HIT_RANGE],
        lambda b, v: t.memory_row(b, dataclasses.replace(FIRESIM_DDR3, row_hit_rate=v)),
        {"predicted": (FIRESIM_DDR3.row_hit_rate, f"{FIRESIM_DDR3.row_hit_rate:g}")},
        on=("predicted",),
    )
    t.row(
        "mispredict_penalty",
        "branch mispredict penalty (cycles)",
        "assumed",
        "Rocket resolves branches in execute; the front end refetches",
        [(v, f"{v:g} cycles") for v in MISPREDICT_RANGE],
        lambda b, v: t.designs(b, timing=_timing(mispredict_penalty=v)),
        {"predicted": (RocketTiming().mispredict_penalty, f"{RocketTiming().mispredict_penalty:g} cycles")},
        on=("predicted",),
    )
    t.row(
        "fp_to_int_latency",
        "FP-to-int latency (cycles)",
        "assumed",
        "FPToInt's result written back through the core's MEM stage (an estimate)",
        [(v, f"{v} cycles") for v in FP_TO_INT_RANGE],
        lambda b, v: t.designs(b, timing=_timing(fp_to_int=v)),
        {"predicted": (RocketTiming().latency_of("fp_to_int"), f"{RocketTiming().latency_of('fp_to_int')} cycles")},
        on=("predicted",),
    )


def _option_rows(t: _Tornado) -> None:
    """Gemmini's software options, off and on, around both configurations."""
    for option, what in (
        ("skip_one_trip_loops", "a one-trip DRAM loop is no loop (Timeloop); off: A and B move in for every tile"),
        ("weights_stay_in_array", "a one-block weight tile stays in the PEs across m-tiles (Timeloop); off: preloaded"),
    ):
        ref = getattr(t.base_hw.cost_options, option)
        t.row(
            option,
            f"cost option {option}",
            "software option",
            f"{what}; the presets set it {'on' if ref else 'off'}, as Gemmini's software of the paper's time does",
            [(False, "off"), (True, "on")],
            _option_setter(t.designs, option),
            {name: (ref, "on" if ref else "off") for name in t.bases},
        )


def sensitivity(
    model: str = "bert-base",
    seq: int = 512,
    baseline: str = "gemmini-baseline",
    target: str = "gemmini-ibert",
    calibrated_suffix: str = "-calibrated",
) -> dict[str, Any]:
    """The speedup baseline -> target as each assumption moves over its range, around the predicted configuration
    (the presets) and around the calibrated one (the presets named with `calibrated_suffix`). Plain JSON data:
    `bases` (each configuration's speedup and inputs) and `rows` (per assumption: its kind, range, and per base the
    points, the speedup at each, and its min and max)."""
    base_hw, target_hw = load_hardware(baseline), load_hardware(target)
    base_cal, target_cal = load_hardware(baseline + calibrated_suffix), load_hardware(target + calibrated_suffix)
    hosts = (_host(base_cal), _host(target_cal))
    for hw in (base_hw, target_hw, base_cal, target_cal):
        hw.with_link(*LINK, 1.0)  # raises SpecError if a design lacks the DMA link
    calibrated_dma = design_of(base_cal).scratchpad_fill_bytes_per_cycle  # the DMA link, DRAM -> on-chip memories
    shipped_dma = design_of(base_hw).scratchpad_fill_bytes_per_cycle
    wf = write_fraction(model, base_hw, seq)
    bases = {
        "predicted": _Base("predicted", "predicted", None, wf, hosts),
        "calibrated": _Base("calibrated", "calibrated", calibrated_dma, wf, hosts),
    }
    t = _Tornado(model, seq, base_hw, target_hw, bases, wf)
    _input_rows(t, shipped_dma, calibrated_dma)
    _assumption_rows(t)
    _option_rows(t)
    return {
        "model": model,
        "seq": seq,
        "baseline": baseline,
        "target": target,
        "write_fraction": wf,
        "bases": {
            name: {
                "speedup": t.reference[name]["speedup"],
                "baseline_matmul_share": t.reference[name]["baseline_matmul_share"],
                "host": b.host,
                "dma_bytes_per_cycle": shipped_dma if b.dma_bytes_per_cycle is None else b.dma_bytes_per_cycle,
            }
            for name, b in bases.items()
        },
        "rows": t.rows,
    }
