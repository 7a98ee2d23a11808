"""Device calibration: this machine's achievable matmul throughput and memory bandwidth, by microbenchmark.

Five fp32 measurements, each the best (minimum time) of `repeats` after a warm-up, at the current torch thread
count: a square GEMM (n x n x n) for the compute roof, a batched attention-shaped matmul (heads x l x 64 by
heads x 64 x l) for the act-to-act matmuls, which run far below the GEMM roof on CPUs, a large tensor copy
(bytes read plus bytes written) for the memory roof, and on the heads x l x l score tensor a softmax and an
out-of-place scaling (as eager attention runs them), which on CPUs run several times below the copy roof (exp, and
a fresh output allocation). The result converts to a roofline device and is stored as a
device YAML that `tstack.load_device` reads.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from tstack.errors import SpecError, WorkloadError
from tstack.fileio import write_atomic
from tstack.profile.measure import device_sync, resolve_device
from tstack.workload.roofline import RooflineDevice

FP32_BITS = 32
BYTES_PER_FP32 = 4


@dataclass(frozen=True, slots=True)
class Calibration:
    """Measured rates of one device at one thread count (fp32)."""

    name: str
    device: str
    threads: int
    matmul_flops_per_s: float  # square GEMM
    attention_matmul_flops_per_s: float  # batched heads x l x 64 matmul
    mem_bandwidth_bytes_per_s: float  # copy: read + write
    matmul_n: int
    attention_seq: int
    copy_bytes: int
    # on the heads x l x l score tensor, out of place as eager attention runs them (None: not measured)
    softmax_elements_per_s: float | None = None
    scale_elements_per_s: float | None = None

    def to_device(self) -> RooflineDevice:
        """The plain roofline device: the GEMM rate as the fp32 peak and the copy bandwidth."""
        return RooflineDevice(
            name=self.name,
            peak_ops_per_s=((FP32_BITS, self.matmul_flops_per_s),),
            mem_bandwidth_bytes_per_s=self.mem_bandwidth_bytes_per_s,
            description=self.describe(),
            source="measured by tstack calibrate",
        )

    def describe(self) -> str:
        gemm = self.matmul_flops_per_s / 1e9
        att = self.attention_matmul_flops_per_s / 1e9
        copy = self.mem_bandwidth_bytes_per_s / 1e9
        scores = ""
        if self.softmax_elements_per_s is not None and self.scale_elements_per_s is not None:
            scores = (
                f", softmax {self.softmax_elements_per_s / 1e9:.2f} Gelem/s, "
                f"score scaling {self.scale_elements_per_s / 1e9:.2f} Gelem/s"
            )
        return (
            f"{self.device} on {platform.node() or 'this machine'}, {self.threads} threads: fp32 GEMM "
            f"{self.matmul_n}^3 {gemm:.1f} GFLOP/s, attention matmul (l={self.attention_seq}) {att:.1f} GFLOP/s, "
            f"copy {copy:.1f} GB/s{scores}"
        )


def _best_time(fn: Callable[[], object], sync: Callable[[], None], repeats: int) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def calibrate(
    *,
    device: str = "cpu",
    threads: int | None = None,
    name: str | None = None,
    matmul_n: int = 1024,
    attention_seq: int = 256,
    heads: int = 12,
    head_dim: int = 64,
    copy_bytes: int = 128 * 2**20,
    repeats: int = 5,
) -> Calibration:
    """Measure the device (see the module docstring). Sizes are parameters so tests can run tiny ones."""
    import torch

    if min(matmul_n, attention_seq, heads, head_dim, copy_bytes, repeats) <= 0:
        raise WorkloadError("calibration sizes and repeats must be positive")
    dev = resolve_device(device)
    if threads is not None and threads <= 0:
        raise WorkloadError(f"--threads must be positive, got {threads}")
    sync = device_sync(dev)
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        n_threads = torch.get_num_threads()
        with torch.inference_mode():
            a = torch.full((matmul_n, matmul_n), 0.5, device=dev)
            b = torch.full((matmul_n, matmul_n), 0.25, device=dev)
            c = torch.empty((matmul_n, matmul_n), device=dev)
            t_mm = _best_time(lambda: torch.mm(a, b, out=c), sync, repeats)
            att_flops, softmax_rate, scale_rate = _attention_rates(dev, sync, attention_seq, heads, head_dim, repeats)
            n_elem = max(copy_bytes // BYTES_PER_FP32, 1)
            src = torch.full((n_elem,), 1.0, device=dev)
            dst = torch.empty_like(src)
            t_copy = _best_time(lambda: dst.copy_(src), sync, repeats)
    finally:
        torch.set_num_threads(before)
    return Calibration(
        name=name or f"{dev.split(':')[0]}-calibrated",
        device=dev,
        threads=n_threads,
        matmul_flops_per_s=2.0 * matmul_n**3 / t_mm,
        attention_matmul_flops_per_s=att_flops,
        mem_bandwidth_bytes_per_s=2.0 * n_elem * BYTES_PER_FP32 / t_copy,
        matmul_n=matmul_n,
        attention_seq=attention_seq,
        copy_bytes=n_elem * BYTES_PER_FP32,
        softmax_elements_per_s=softmax_rate,
        scale_elements_per_s=scale_rate,
    )


def _attention_rates(
    dev: str, sync: Callable[[], None], seq: int, heads: int, head_dim: int, repeats: int
) -> tuple[float, float, float]:
    """(attention-matmul FLOP/s, softmax elements/s, score-scaling elements/s) on a heads x seq x seq score tensor,
    out of place as eager attention runs them. Call inside `torch.inference_mode()`."""
    import torch

    q = torch.full((heads, seq, head_dim), 0.5, device=dev)
    k = torch.full((heads, head_dim, seq), 0.25, device=dev)
    s = torch.empty((heads, seq, seq), device=dev)
    t_att = _best_time(lambda: torch.bmm(q, k, out=s), sync, repeats)
    t_softmax = _best_time(lambda: torch.softmax(s, dim=-1), sync, repeats)
    t_scale = _best_time(lambda: s * 0.125, sync, repeats)
    elements = heads * seq * seq
    return 2.0 * elements * head_dim / t_att, elements / t_softmax, elements / t_scale


def calibrate_attention(
    base: Calibration, *, seq: int, heads: int = 12, head_dim: int = 64, repeats: int = 5
) -> Calibration:
    """`base` with its attention-shaped rates (act-to-act matmul, softmax, score scaling) re-measured on the score
    tensor a model with `heads` heads of `head_dim` runs at length `seq`.

    On a CPU these rates fall as l grows and the heads x l x l scores leave the caches (measured on this project's
    2-vCPU VM: softmax 0.59 Gelem/s at l = 256, 0.23 inside BERT-Base at l = 512), so a prediction at l uses rates
    measured at l."""
    import torch

    if min(seq, heads, head_dim, repeats) <= 0:
        raise WorkloadError("calibration sizes and repeats must be positive")
    dev = resolve_device(base.device)
    sync = device_sync(dev)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(base.threads)
        with torch.inference_mode():
            att_flops, softmax_rate, scale_rate = _attention_rates(dev, sync, seq, heads, head_dim, repeats)
    finally:
        torch.set_num_threads(before)
    return replace(
        base,
        attention_seq=seq,
        attention_matmul_flops_per_s=att_flops,
        softmax_elements_per_s=softmax_rate,
        scale_elements_per_s=scale_rate,
    )


def device_yaml(cal: Calibration) -> str:
    """The calibration as a device YAML (`tstack.spec.devices.DeviceFile` fields; fp32 is the only peak)."""
    doc = {
        "name": cal.name,
        "description": cal.describe(),
        "source": "measured by tstack calibrate (fp32 microbenchmarks: square GEMM, tensor copy)",
        "peak_tera_ops_per_s": {FP32_BITS: cal.matmul_flops_per_s / 1e12},
        "mem_bandwidth_gb_per_s": cal.mem_bandwidth_bytes_per_s / 1e9,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_device(cal: Calibration, path: Path) -> Path:
    if path.suffix not in (".yaml", ".yml"):
        raise SpecError(f"device file {path} must end in .yaml or .yml so that --device can read it back")
    return write_atomic(path, device_yaml(cal))
