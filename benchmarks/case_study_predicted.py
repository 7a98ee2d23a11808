"""The Gemmini case study (BERT-Base, l = 512) with the host and the DMA predicted (the presets) and calibrated.

    .venv/bin/python benchmarks/case_study_predicted.py

Prints the table of benchmarks/RESULTS-case-study.md: each configuration's baseline utilization, matmul share,
Fig. 14 (left) category shares, the rebalanced matmul cut and the co-designed speedup, beside the paper's.
Configurations: the presets as shipped (host and DMA predicted), the -calibrated presets (host fitted to Fig. 14, DMA
5 B/cycle fitted to Fig. 13), each calibration alone, and the DMA at the 128-bit port's peak.
"""

from __future__ import annotations

import dataclasses

import tstack
from tstack.hardware.design import design_of
from tstack.hardware.dma_model import FIRESIM_DDR3, GEMMINI_DMA, littles_law_bandwidth, predict_dma
from tstack.hardware.types import Hardware
from tstack.spec.hardware import load_hardware
from tstack.studies.sensitivity import write_fraction

SEQ = 512
PAPER = {
    "utilization": "<1%",
    "matmul": 1.06,
    "softmax": 20.2,
    "layernorm": 4.3,
    "resadd": 11.7,
    "dequant": 52.1,
    "gelu": 10.6,
    "speedup": 39.6,
    "ibert_matmul": 87.0,
}  # Fig. 14 left renormalized to 100


def configure(name: str, host: str, dma: float | None) -> Hardware:
    """`name`'s design with the host of the `host` configuration ("predicted": the presets', "calibrated": the
    -calibrated presets') and, if given, the DMA link at `dma` B/cycle."""
    hw = load_hardware(name)
    if host == "calibrated":
        hw = dataclasses.replace(hw, host=load_hardware(f"{name}-calibrated").host)
    if dma is not None:
        hw = hw.with_link("dram", "scratchpad", dma)
    return hw


def row(label: str, host: str, dma: float | None) -> dict[str, float | str]:
    base = tstack.simulate("bert-base", configure("gemmini-baseline", host, dma), SEQ)
    reb = tstack.simulate("bert-base", configure("gemmini-rebalanced", host, dma), SEQ)
    ib = tstack.simulate("bert-base", configure("gemmini-ibert", host, dma), SEQ)
    cats = base.by_category()
    total = sum(cats.values())
    ib_cats = ib.by_category()
    ib_total = sum(ib_cats.values())
    out: dict[str, float | str] = {"config": label, "utilization": 100 * base.utilization}
    out |= {c: 100 * cats[c] / total for c in ("matmul", "softmax", "layernorm", "resadd", "dequant", "gelu")}
    out["rebalanced_cut"] = 100 * (1 - reb.matmul_cycles() / base.matmul_cycles())
    out["speedup"] = base.latency_cycles / ib.latency_cycles
    out["ibert_matmul"] = 100 * (ib_cats["matmul"] + ib_cats.get("gelu", 0.0)) / ib_total
    return out


def main() -> None:
    wf = write_fraction("bert-base", load_hardware("gemmini-baseline"), SEQ)
    pred = predict_dma(GEMMINI_DMA, FIRESIM_DDR3, output_bytes=1)
    eff = pred.effective(wf)
    print(
        f"DMA: latency {pred.latency_cycles:.1f} cycles, read {pred.read_bytes_per_cycle:.2f} B/cycle, "
        f"write {pred.write_bytes_per_cycle:.2f} B/cycle, write share {wf:.3f}, effective {eff:.2f} B/cycle"
    )
    print(f"Little's law alone (no memory-bus cap): read {littles_law_bandwidth(64, 16, pred.latency_cycles, 1e9):.1f}")
    shipped = design_of(load_hardware("gemmini-baseline")).dram_bytes_per_cycle
    calibrated = design_of(load_hardware("gemmini-baseline-calibrated")).dram_bytes_per_cycle
    rows = [
        row(f"predicted host, predicted DMA ({shipped:g} B/cycle): presets as shipped", "predicted", None),
        row(f"calibrated host, calibrated DMA ({calibrated:g} B/cycle): -calibrated presets", "calibrated", calibrated),
        row("predicted host, calibrated DMA", "predicted", calibrated),
        row(f"calibrated host, predicted DMA ({shipped:g} B/cycle)", "calibrated", None),
        row("predicted host, DMA at the 128-bit port's peak (16 B/cycle)", "predicted", 16.0),
    ]
    keys = [
        "utilization",
        "matmul",
        "softmax",
        "layernorm",
        "resadd",
        "dequant",
        "gelu",
        "rebalanced_cut",
        "speedup",
        "ibert_matmul",
    ]
    print("| configuration | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for r in rows:
        print(f"| {r['config']} | " + " | ".join(f"{float(r[k]):.2f}" for k in keys) + " |")
    print("| paper | " + " | ".join(str(PAPER.get(k, "36")) for k in keys) + " |")


if __name__ == "__main__":
    main()
