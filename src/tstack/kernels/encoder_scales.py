"""Where the encoder pipelines get their activation scales and LayerNorm pre-shifts: a recorder while calibrating,
the frozen `Calibration` afterwards.

Calibration runs the same integer pipeline it calibrates: at each requantization site the recorder hands back the
scale of the current batch's own range and keeps the running maximum |x| over batches; each LayerNorm runs with
the running maximum of its pre-shift so far. The `Calibration` it freezes answers with those final values only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tstack.errors import TstackError
from tstack.kernels.layernorm import ibert_layernorm_shift
from tstack.kernels.quant import symmetric_scale


class ScaleSource(Protocol):
    """What a pipeline asks at each requantization site and LayerNorm."""

    def act_scale(self, name: str, bits: int, batch_absmax: Callable[[], float]) -> float:
        """The output scale of site `name` (`batch_absmax` computes this batch's max |x|, if it is needed)."""
        ...

    def frozen_act_scale(self, name: str) -> float | None:
        """The frozen scale of site `name`, or None while calibrating (so that fused stages are not used)."""
        ...

    def ln_shift(self, name: str, q: npt.NDArray[np.integer], bits: int) -> int:
        """The pre-shift of LayerNorm `name` for its `bits`-bit input q."""
        ...


@dataclass(frozen=True, slots=True)
class ActivationRange:
    """The calibrated range of one requantization site: max |x| over the calibration data (in the tensor's real
    units) and the bit width it is quantized to."""

    name: str
    bits: int
    absmax: float

    @property
    def scale(self) -> float:
        return float(symmetric_scale(-self.absmax, self.absmax, self.bits))


@dataclass(frozen=True, slots=True)
class LayerNormShift:
    """The calibrated pre-shift (right shift, bits) of one i-LayerNorm's input."""

    name: str
    shift_bits: int


@dataclass(frozen=True, slots=True)
class Calibration:
    """Every site's range and every LayerNorm's pre-shift, sorted by name; a hashable value (equal calibrations
    of the same data compare equal)."""

    ranges: tuple[ActivationRange, ...]
    ln_shifts: tuple[LayerNormShift, ...]
    batches: int
    _scales: Mapping[str, float] = field(init=False, repr=False, compare=False, hash=False)
    _shifts: Mapping[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scales", MappingProxyType({r.name: r.scale for r in self.ranges}))
        object.__setattr__(self, "_shifts", MappingProxyType({s.name: s.shift_bits for s in self.ln_shifts}))

    def absmax(self) -> dict[str, float]:
        """Site name → calibrated max |x|."""
        return {r.name: r.absmax for r in self.ranges}

    def shifts(self) -> dict[str, int]:
        """LayerNorm name → calibrated pre-shift."""
        return dict(self._shifts)

    def act_scale(self, name: str, bits: int, batch_absmax: Callable[[], float]) -> float:
        scale = self._scales.get(name)
        if scale is None:
            raise TstackError(f"site {name!r} was never calibrated; calibrate the encoder on sample inputs first")
        return scale

    def frozen_act_scale(self, name: str) -> float | None:
        return self._scales.get(name)

    def ln_shift(self, name: str, q: npt.NDArray[np.integer], bits: int) -> int:
        shift = self._shifts.get(name)
        if shift is None:
            raise TstackError(f"LayerNorm {name!r} was never calibrated; calibrate the encoder first")
        return shift


class CalibrationRecorder:
    """The scale source of a calibration run: batch ranges in, running maxima kept, frozen by `freeze`."""

    def __init__(self) -> None:
        self._ranges: dict[str, ActivationRange] = {}
        self._shifts: dict[str, int] = {}

    def act_scale(self, name: str, bits: int, batch_absmax: Callable[[], float]) -> float:
        batch_max = batch_absmax()
        held = self._ranges.get(name)
        absmax = batch_max if held is None else max(held.absmax, batch_max)
        self._ranges[name] = ActivationRange(name, bits if held is None else held.bits, max(absmax, 0.0))
        return float(symmetric_scale(-batch_max, batch_max, bits))

    def frozen_act_scale(self, name: str) -> float | None:
        return None

    def ln_shift(self, name: str, q: npt.NDArray[np.integer], bits: int) -> int:
        shift = max(self._shifts.get(name, 0), ibert_layernorm_shift(q, bits=bits))
        self._shifts[name] = shift
        return shift

    def freeze(self, batches: int) -> Calibration:
        ranges = tuple(self._ranges[k] for k in sorted(self._ranges))
        shifts = tuple(LayerNormShift(k, self._shifts[k]) for k in sorted(self._shifts))
        return Calibration(ranges, shifts, batches)
