"""Build tstack's area/energy tables with hwcomponents (CACTI + the Aladdin library); run under Python 3.12.

    bash benchmarks/area/setup_env312.sh            # once: .venv312 with tstack[area] and a CACTI that runs here
    .venv312/bin/python benchmarks/area/build_tables.py --node 22 --node 45

Writes `src/tstack/presets/area/hwcomponents-<node>nm.json` (the SRAM grid, logic blocks, DRAM energies) and
`cacti-reference-<node>nm.json` (CACTI's own figures for a few macros, on and off the grid, that
tests/unit/hardware/test_area_cacti.py compares the interpolated table against), each written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tstack.fileio import write_atomic
from tstack.hardware.area_live import (
    GRID_CAPACITIES_BYTES,
    build_document,
    cacti_sram,
    package_versions,
    require_hwcomponents,
)

OUT = Path(__file__).resolve().parents[2] / "src" / "tstack" / "presets" / "area"

# (capacity B, width bits, banks): Gemmini's scratchpad and accumulator (on the grid), and macros between grid points
# in capacity, width or both (what the interpolation must get right).
REFERENCE_MACROS = (
    (256 * 1024, 128, 4),
    (64 * 1024, 512, 2),
    (96 * 1024, 128, 4),
    (192 * 1024, 512, 2),
    (48 * 1024, 64, 1),
    (640 * 1024, 128, 4),
    (3 * 1024 * 1024, 256, 8),
    (128 * 1024, 384, 2),
)


def _progress(done: int, total: int) -> None:
    if done % 30 == 0 or done == total:
        print(f"  {done}/{total} CACTI runs", file=sys.stderr, flush=True)


def build(node: int, out: Path, max_capacity_bytes: int | None) -> None:
    start = time.perf_counter()
    caps = [c for c in GRID_CAPACITIES_BYTES if max_capacity_bytes is None or c <= max_capacity_bytes]
    doc = build_document(node, capacities_bytes=caps, progress=_progress)
    path = out / f"{doc['name']}.json"
    write_atomic(path, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path} ({time.perf_counter() - start:.0f} s)")
    rows = []
    for cap, width, banks in REFERENCE_MACROS:
        if cap > caps[-1]:
            continue
        area_mm2, read_pj, write_pj = cacti_sram(node, cap, width, banks)
        rows.append(
            {
                "capacity_bytes": cap,
                "width_bits": width,
                "banks": banks,
                "area_mm2": area_mm2,
                "read_energy_pj": read_pj,
                "write_energy_pj": write_pj,
            }
        )
    ref = {
        "schema": "tstack.cacti-reference/1",
        "tech_node_nm": node,
        "source": "measured: CACTI's output through hwcomponents_cacti.SRAM (per access of width_bits)",
        "provenance": {**doc["provenance"], "generator": "benchmarks/area/build_tables.py"},
        "macros": rows,
    }
    ref_path = out / f"cacti-reference-{node}nm.json"
    write_atomic(ref_path, json.dumps(ref, indent=1) + "\n")
    print(f"wrote {ref_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", type=int, action="append", help="technology node in nm (repeatable; default 22)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the tables")
    parser.add_argument(
        "--max-capacity-kib", type=int, help="stop the capacity axis here (CACTI takes seconds per MiB-sized macro)"
    )
    args = parser.parse_args()
    require_hwcomponents()
    print(f"hwcomponents packages: {package_versions()}")
    for node in args.node or [22]:
        build(node, args.out, None if args.max_capacity_kib is None else args.max_capacity_kib * 1024)


if __name__ == "__main__":
    main()
