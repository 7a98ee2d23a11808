"""Figure of the integer kernels: measured max |error| against input precision, one panel per kernel."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from tstack.fileio import write_atomic


def kernel_errors_plot(doc: dict[str, Any], folder: Path) -> Path:
    """`kernel-errors.png` in `folder` from a `tstack.kernels/1` document: max |error| (log) vs. input bits, one
    line per variant. Written atomically."""
    kernels = sorted({e["kernel"] for e in doc["errors"]})
    fig, axes = plt.subplots(1, len(kernels), figsize=(4 * len(kernels), 3.2), squeeze=False)
    for ax, kernel in zip(axes[0], kernels, strict=True):
        for variant in doc["variants"]:
            rows = [e for e in doc["errors"] if e["kernel"] == kernel and e["variant"] == variant]
            # A zero error would vanish on the log axis: floor it at 1e-9 so the point stays visible.
            ax.semilogy([r["bits"] for r in rows], [max(r["max_abs_error"], 1e-9) for r in rows], "o-", label=variant)
        ax.set_title(f"i-{kernel}")
        ax.set_xlabel("input bits")
        ax.set_ylabel("max |error|")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120)
    finally:
        plt.close(fig)
    return write_atomic(folder / "kernel-errors.png", buf.getvalue())
