"""Measure a model: wall time over repeats, and a profiled breakdown of op self time by class.

Robustness on a shared, noisy machine: warm-up runs first; wall time is reported as min and median over
repeats (the min is the least-disturbed estimate); the breakdown comes from several profiling rounds and keeps
each op's smallest self time over the rounds, since contention inflates different ops in different rounds; the thread
count is set and recorded; a large spread between repeats produces a warning in the result.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tstack.errors import SpecError, TstackError, WorkloadError
from tstack.profile.build import TorchModel, build_torch_model, check_positions, pick_arch
from tstack.profile.classify import MEASURED_CLASSES, OpTiming, attribute, cpu_events, scoped
from tstack.profile.quiet import quiet_profile
from tstack.workload.model import Family, ModelSpec
from tstack.workload.ops import Phase

SPREAD_WARNING = 0.25  # median / min - 1 above this: the machine was busy while measuring


class DeviceUnavailableError(TstackError):
    """The requested torch device is not present on this machine."""


@dataclass(frozen=True, slots=True)
class WallTime:
    """Wall-clock seconds of one run (a forward, or a whole generation) over `repeats` timed repeats."""

    min_s: float
    median_s: float
    max_s: float
    repeats: int

    @property
    def spread(self) -> float:
        return self.median_s / self.min_s - 1.0 if self.min_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """One model at one (phase, sequence length, batch) on one device: wall time and the per-class breakdown.

    `class_time_s` is self time per run (each op's fastest profiling round), for every class of `MEASURED_CLASSES`;
    `profiled_s` is its sum (op work only: Python and framework glue are in the wall time, not here).
    """

    model: ModelSpec
    phase: Phase
    seq_len: int
    batch: int
    device: str
    threads: int
    wall: WallTime
    profiled_s: float
    class_time_s: tuple[tuple[str, float], ...]
    ops: tuple[OpTiming, ...]
    rounds: int
    round_totals_s: tuple[float, ...]
    warnings: tuple[str, ...] = ()

    def time_s(self, op_class: str) -> float:
        return dict(self.class_time_s).get(op_class, 0.0)

    def shares(self) -> dict[str, float]:
        """Fraction of the profiled self time per class (sums to 1)."""
        total = self.profiled_s
        return {c: (t / total if total else 0.0) for c, t in self.class_time_s}

    @property
    def coverage(self) -> float:
        """Fraction of the profiled self time that a rule attributed to a class (everything but unclassified)."""
        return 1.0 - self.shares().get("unclassified", 0.0)

    def unclassified(self) -> tuple[OpTiming, ...]:
        return tuple(o for o in self.ops if o.op_class == "unclassified")


def resolve_device(device: str) -> str:
    """`device` if torch can use it here; a `DeviceUnavailableError` with the reason otherwise."""
    import torch

    if device == "cpu":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"--device {device} requested but torch {torch.__version__} sees no CUDA GPU on this machine; "
                f"use --device cpu"
            )
        return device
    raise SpecError(f"unknown device {device!r}; use cpu or cuda")


class _Runner:
    """One phase of one model at one length: `prepare` (untimed) then `run` (timed) for each measurement."""

    def __init__(self, model: TorchModel, phase: Phase, seq: int, batch: int, seed: int) -> None:
        import torch

        self.model = model
        self.phase = phase
        self.seq = seq
        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, model.spec.vocab_size, (batch, seq), generator=gen).to(model.device)
        self.cache: Any = None
        self.cache_kwarg = cache_kwarg(model.module)

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self.model.module.config)
        except TypeError:  # older transformers: a DynamicCache takes no config and grows its layers lazily
            return DynamicCache()

    def prepare(self) -> None:
        if self.phase is Phase.DECODE:
            if self.cache is None:
                self.cache = self._new_cache()
                if self.seq > 1:
                    self._step(self.ids[:, : self.seq - 1])
            else:
                extra = self.cache.get_seq_length() - (self.seq - 1)
                if extra > 0:
                    self.cache.crop(-extra)  # drop the token the last timed step appended
        elif self.phase in (Phase.PREFILL, Phase.GENERATE):
            self.cache = self._new_cache()

    def _step(self, ids: Any) -> None:
        self.model.module(input_ids=ids, use_cache=True, **{self.cache_kwarg: self.cache})

    def run(self) -> None:
        if self.phase is Phase.ENCODER:
            self.model.module(input_ids=self.ids)
        elif self.phase is Phase.PREFILL:
            self._step(self.ids)
        elif self.phase is Phase.DECODE:
            self._step(self.ids[:, self.seq - 1 :])
        else:  # the paper's generation: l steps of one token each, no prompt, the KV cache growing
            for t in range(self.seq):
                self._step(self.ids[:, t : t + 1])
        if self.cache is not None and self.cache.get_seq_length() != self.seq:
            # a forward that ignored the cache (an unknown keyword lands in **kwargs) would time a different model
            raise TstackError(
                f"the KV cache holds {self.cache.get_seq_length()} positions after a {self.phase.value} run of "
                f"{self.seq} tokens: this transformers version did not use the cache passed as {self.cache_kwarg!r}"
            )


def cache_kwarg(module: Any) -> str:
    """The forward's name for the KV cache: `cache` in transformers >= 5.2x, `past_key_values` before."""
    import inspect

    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def device_sync(device: str) -> Callable[[], None]:
    """Waits for the device's queued work (CUDA); a no-op on the CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def _fastest_per_op(rounds: list[list[OpTiming]]) -> list[OpTiming]:
    """Each op's smallest self time over the profiling rounds: contention inflates different ops in different
    rounds, so the per-op minimum is closer to an undisturbed run than any single round."""
    best: dict[tuple[str, str, str], OpTiming] = {}
    for ops in rounds:
        for o in ops:
            key = (o.name, o.scope, o.shapes)
            if key not in best or o.time_s < best[key].time_s:
                best[key] = o
    return sorted(best.values(), key=lambda o: -o.time_s)


def _check_phase(spec: ModelSpec, phase: Phase) -> None:
    if spec.family is Family.ENCODER and phase is not Phase.ENCODER:
        raise WorkloadError(f"model {spec.name!r} is an encoder; phase {phase.value!r} needs a decoder (use encoder)")
    if spec.family is Family.DECODER and phase is Phase.ENCODER:  # as the workload layer, which predicts it
        raise WorkloadError(f"model {spec.name!r} is a decoder; use --phase generate, prefill or decode")


def profile_model(
    model: TorchModel,
    seq: int,
    *,
    phase: Phase,
    batch: int = 1,
    repeats: int = 5,
    warmup: int = 2,
    rounds: int = 3,
    seed: int = 0,
) -> ProfileResult:
    """Measure `model` (already built) at one sequence length: wall time over `repeats`, breakdown over `rounds`.

    The caller sets the thread count; it is read back and recorded here.
    """
    import torch
    from torch.profiler import ProfilerActivity

    spec = model.spec
    _check_phase(spec, phase)
    if seq <= 0 or batch <= 0:
        raise WorkloadError(f"sequence length and batch must be positive, got seq={seq}, batch={batch}")
    if seq > model.max_positions:
        check_positions(spec, seq, extend_positions=False)
    if repeats <= 0 or rounds <= 0 or warmup < 0:
        raise WorkloadError("repeats and rounds must be positive and warmup non-negative")
    cuda = model.device.startswith("cuda")
    sync = device_sync(model.device)
    runner = _Runner(model, phase, seq, batch, seed)
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            runner.prepare()
            runner.run()
        sync()
        for _ in range(repeats):
            runner.prepare()
            sync()
            t0 = time.perf_counter()
            runner.run()
            sync()
            times.append(time.perf_counter() - t0)
        activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
        per_round: list[list[OpTiming]] = []
        for _ in range(rounds):
            runner.prepare()
            sync()
            with scoped(model), quiet_profile(activities=activities, record_shapes=True) as prof:
                runner.run()
                sync()
            events = prof.events() if cuda else cpu_events(prof)
            per_round.append(attribute(events, device_time=cuda, runs=1))
    totals = [sum(o.time_s for o in ops) for ops in per_round]
    best = _fastest_per_op(per_round)
    by_class = dict.fromkeys(MEASURED_CLASSES, 0.0)
    for o in best:
        by_class[o.op_class] += o.time_s
    wall = WallTime(min(times), statistics.median(times), max(times), repeats)
    warnings = []
    if wall.spread > SPREAD_WARNING:
        warnings.append(
            f"wall time varied {wall.spread:.0%} between repeats (min {wall.min_s * 1e3:.1f} ms, median "
            f"{wall.median_s * 1e3:.1f} ms): the machine is busy; rerun with more --repeats or fewer --threads"
        )
    if len(totals) > 1 and min(totals) > 0 and max(totals) / min(totals) - 1 > SPREAD_WARNING:
        warnings.append(
            f"profiled time varied {max(totals) / min(totals) - 1:.0%} between rounds; each op's fastest round is kept"
        )
    return ProfileResult(
        model=spec,
        phase=phase,
        seq_len=seq,
        batch=batch,
        device=model.device,
        threads=torch.get_num_threads(),
        wall=wall,
        profiled_s=sum(by_class.values()),
        class_time_s=tuple(by_class.items()),
        ops=tuple(best),
        rounds=rounds,
        round_totals_s=tuple(totals),
        warnings=tuple(warnings),
    )


def preflight(
    spec: ModelSpec,
    seqs: tuple[int, ...],
    *,
    phase: Phase | None = None,
    device: str = "cpu",
    threads: int | None = None,
    extend_positions: bool = False,
) -> tuple[Phase, str, int]:
    """Check a request before any work: a builder exists, the device is here, the lengths fit the positions.

    Returns the phase (the paper's default when None), the device and the position-table size to build.
    """
    pick_arch(spec)
    if not seqs:
        raise WorkloadError("no sequence length given; pass at least one, e.g. --seq 128")
    if min(seqs) <= 0:
        raise WorkloadError(f"sequence lengths must be positive, got {min(seqs)}")
    the_phase = phase or (Phase.GENERATE if spec.family is Family.DECODER else Phase.ENCODER)
    _check_phase(spec, the_phase)
    dev = resolve_device(device)
    positions = check_positions(spec, max(seqs), extend_positions)
    if threads is not None and threads <= 0:
        raise WorkloadError(f"--threads must be positive, got {threads}")
    return the_phase, dev, positions


def profile(
    spec: ModelSpec,
    seqs: Iterable[int],
    *,
    phase: Phase | None = None,
    device: str = "cpu",
    threads: int | None = None,
    batch: int = 1,
    repeats: int = 5,
    warmup: int = 2,
    rounds: int = 3,
    seed: int = 0,
    extend_positions: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[ProfileResult, ...]:
    """Build `spec` as a real model once and measure it at each sequence length (see `profile_model`).

    `phase` defaults to the paper's: encoder for encoders, generate (l one-token steps with a KV cache) for
    decoders. `threads` sets torch's intra-op thread count for the duration (default: torch's current one).
    `progress`, if given, is called with each finished sequence length.
    """
    import torch

    lengths = tuple(seqs)
    the_phase, dev, positions = preflight(
        spec, lengths, phase=phase, device=device, threads=threads, extend_positions=extend_positions
    )
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        model = build_torch_model(spec, positions=positions, device=dev, seed=seed)
        results = []
        for s in lengths:
            results.append(
                profile_model(
                    model,
                    s,
                    phase=the_phase,
                    batch=batch,
                    repeats=repeats,
                    warmup=warmup,
                    rounds=rounds,
                    seed=seed,
                )
            )
            if progress is not None:
                progress(s)
        return tuple(results)
    finally:
        torch.set_num_threads(before)
