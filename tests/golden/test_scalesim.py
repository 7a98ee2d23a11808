"""Compute cycles of single GEMMs against SCALE-Sim 3.0.0 (PyPI `scalesim`), run here in CALC mode.

With tstack's options set to SCALE-Sim's semantics — weights loaded per fold (not hidden), skew fill and drain per
fold, partial sums written out per fold, the whole M streamed per fold — the cycle counts agree exactly. SCALE-Sim
reports the index of the last cycle, one less than the count: folds x (2 rows + cols + M - 2) - 1.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_hardware
from tstack.mapping.matmul.cost import CostOptions, FillDrain, PartialSums, matmul_costs
from tstack.mapping.matmul.loopnest import ORDERS, MatmulShape

scalesim = pytest.importorskip("scalesim.scale_sim")

CONFIG = """[general]
run_name = tstack_check
[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 128
FilterSramSzkB: 128
OfmapSramSzkB: 64
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth : 16
Dataflow : ws
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32
[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 16
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 16
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2
[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40
[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

LAYOUT_HEADER = (
    "Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, Filter Height Intraline Factor, "
    "Filter Width Intraline Factor, Channel Intraline Factor, Num Filter Intraline Factor, IFMAP Height Intraline "
    "Order, IFMAP Width Intraline Order, Channel Intraline Order, IFMAP Height Interline Order, IFMAP Width Interline "
    "Order, Channel Interline Order, Num Filter Intraline Order, Channel Intraline Order, Filter Height Intraline "
    "Order, Filter Width Intraline Order, Num Filter Interline Order, Channel Interline Order, Filter Height "
    "Interline Order, Filter Width Interline Order,\nL0,1,16,1,16,1,16,1,2,0,4,5,3,3,0,1,2,7,4,5,6,\n"
)

GEMMS = [(64, 64, 64), (40, 48, 24), (100, 20, 37), (33, 70, 129)]  # (M, N, K)
SCALESIM_OPTIONS = CostOptions(
    preload_hidden=False, fill_drain=FillDrain.PER_FOLD, partial_sums=PartialSums.SPILL, overlap_transfers=True
)


def _scalesim_cycles(tmp_path: Path, rows: int, cols: int) -> list[int]:
    (tmp_path / "cfg.cfg").write_text(CONFIG.format(rows=rows, cols=cols))
    (tmp_path / "topo.csv").write_text(
        "Layer,M,N,K,\n" + "".join(f"g{i},{m},{n},{k},\n" for i, (m, n, k) in enumerate(GEMMS))
    )
    (tmp_path / "layout.csv").write_text(LAYOUT_HEADER)
    sim = scalesim.scalesim(
        save_disk_space=True,
        verbose=False,
        config=str(tmp_path / "cfg.cfg"),
        topology=str(tmp_path / "topo.csv"),
        layout=str(tmp_path / "layout.csv"),
        input_type_gemm=True,
    )
    sim.run_scale(top_path=str(tmp_path / "out"))
    with open(tmp_path / "out" / "tstack_check" / "COMPUTE_REPORT.csv", newline="") as f:
        return [int(row[" Total Cycles"]) for row in csv.DictReader(f)]


@pytest.mark.parametrize(("rows", "cols"), [(16, 16), (8, 32)])
def test_compute_cycles_equal_scalesim(tmp_path: Path, rows: int, cols: int) -> None:
    hw = make_hardware(rows=rows, cols=cols)
    expected = _scalesim_cycles(tmp_path, rows, cols)
    order = np.array([ORDERS.index(("n", "k", "m"))])
    for (m, n, k), theirs in zip(GEMMS, expected, strict=True):
        costs = matmul_costs(
            MatmulShape(m, n, k), np.array([m]), np.array([cols]), np.array([rows]), order, hw, options=SCALESIM_OPTIONS
        )
        assert costs.compute_cycles[0] - 1 == theirs, (m, n, k)
