"""Real Timeloop's random mapper on Gemmini's published Timeloop files: the measurement `tstack mapspace --sampler
timeloop` is checked against (issue 15, point 4).

What it runs, per op (BERT-Base MHA projection 512 x 768 x 768 and FFN W1 512 x 3072 x 768, as
`tstack.mapping.mapspace.PAPER_OPS` has them; Gemmini's conv-layer problem with P = M, C = K, K = N):

    timeloop-mapper arch.yaml problem.yaml mapspace.yaml mapper.yaml

in a temporary folder (the bundled ../shared/tools/timeloop/bin/timeloop-mapper, with the environment its `run`
wrapper sets), with
* arch.yaml = tstack's preset `timeloop/arch/gemmini.yaml` and mapspace.yaml = `timeloop/constraints/gemmini.yaml`,
  restatements of ucb-bar/gemmini `modeling/timeloop/{arch/arch_default.yaml, mapspace/mapspace.yaml}` (commit
  d48db37, 10 May 2023) that load to the same YAML data (`--check-against DIR` verifies that for a checkout);
* mapper.yaml = `{algorithm: random, search-size: N, victory-condition: 0, timeout: 0, num-threads: 1,
  log-suboptimal: True, log-stats: True, optimization-metrics: [edp]}`: N valid mappings, each logged by the bundled
  build's `SAMPLE <thread> <energy pJ> <cycles> <utilization> <computes>` line.

From the log it keeps: the subspace sizes Timeloop prints (`Mapspace Dimension [...] Size`), how many mapping IDs it
drew to find the N valid ones (its last `INVALID <total> <valid> ...` line), the per-access energies of its built-in
`pat` model (from timeloop-mapper.stats.txt), and the statistics of EDP relative to the best sample: 10th percentile,
share within 3x, span, with their bootstrap standard errors (1,000 resamples of the N samples), plus the 1st..99th
percentiles. The samples themselves are not stored (N lines of text per op); rerun to get them.

Writes src/tstack/presets/timeloop/measured/gemmini-random.json (atomically). About 4-5 minutes per op per core at
N = 100,000; the two ops run in parallel. Run: python benchmarks/timeloop_mapper_samples.py [--samples N] [--out F]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from tstack.mapping.mapspace import PAPER_OPS
from tstack.mapping.matmul.loopnest import MatmulShape
from tstack.mapping.timeloop.run import locate_timeloop

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "src" / "tstack" / "presets" / "timeloop"
TOOL = locate_timeloop(ROOT)
OUT = PRESETS / "measured" / "gemmini-random.json"
OPS = ("bert-base-mha", "bert-base-ffn")
TIMELOOP_COMMIT = "eb92a7dfa7cd4c2be4b092cc12afa39a413f14ef"  # NVlabs/timeloop master, 21 Dec 2022 (tool README)
GEMMINI_FILES = "ucb-bar/gemmini d48db378f5f7dabeb677cfc0536aecb7711e37ad (10 May 2023)"
BOOTSTRAP = 1000

SAMPLE = re.compile(r"^SAMPLE \d+ (\S+) (\S+) (\S+) (\S+)$", re.M)
INVALID = re.compile(r"^\[\s*\d+\] INVALID (\d+) (\d+) (\d+)$", re.M)
DIMENSION = re.compile(r"Mapspace Dimension \[(\w+)\] Size: (\d+)")
SECTION = re.compile(r"^=== (\w+) ===$")


def problem(shape: MatmulShape) -> dict[str, Any]:
    dims = {"R": 1, "S": 1, "P": shape.m, "Q": 1, "C": shape.k, "K": shape.n, "N": 1}
    return {"problem": {"shape": "cnn-layer", **dims}}


def mapper(samples: int) -> dict[str, Any]:
    return {
        "mapper": {
            "algorithm": "random",
            "search-size": samples,
            "victory-condition": 0,
            "timeout": 0,
            "num-threads": 1,
            "log-suboptimal": True,
            "log-stats": True,
            "optimization-metrics": ["edp"],
        }
    }


def per_access_energies(stats_text: str) -> dict[str, float]:
    """pJ per scalar access of each storage level and per compute of the MACs, as Timeloop's stats print them."""
    out: dict[str, float] = {}
    level = ""
    for line in stats_text.splitlines():
        found = SECTION.match(line.strip())
        if found:
            level = found.group(1)
            continue
        key, _, value = line.strip().partition(":")
        if level and level not in out and key.strip() in ("Energy (per-scalar-access)", "Compute energy"):
            out[level] = float(value.split()[0])
    return out


def relative_statistics(relative: npt.NDArray[np.float64], rng: np.random.Generator) -> dict[str, Any]:
    def p10(r: npt.NDArray[np.float64]) -> float:
        return float(np.percentile(r, 10))

    def within(r: npt.NDArray[np.float64]) -> float:
        return float(np.mean(r <= 3.0))

    boot_p10, boot_within = [], []
    for _ in range(BOOTSTRAP // 50):  # 50 resamples at a time keeps the index array small
        resampled = relative[rng.integers(0, len(relative), (50, len(relative)))]
        resampled /= resampled.min(axis=1, keepdims=True)  # a resample is a run: relative to its own best
        boot_p10.append(np.percentile(resampled, 10, axis=1))
        boot_within.append(np.mean(resampled <= 3.0, axis=1))
    return {
        "p10": p10(relative),
        "p10_stderr": float(np.std(np.concatenate(boot_p10))),
        "within_3x": within(relative),
        "within_3x_stderr": float(np.std(np.concatenate(boot_within))),
        "span": float(relative.max()),
        "percentiles_1_to_99": [round(float(v), 6) for v in np.percentile(relative, np.arange(1, 100))],
    }


def run_op(name: str, samples: int, workdir: Path) -> dict[str, Any]:
    here = workdir / name
    here.mkdir()
    shutil.copy(PRESETS / "arch" / "gemmini.yaml", here / "arch.yaml")
    shutil.copy(PRESETS / "constraints" / "gemmini.yaml", here / "mapspace.yaml")
    (here / "problem.yaml").write_text(yaml.safe_dump(problem(PAPER_OPS[name]), sort_keys=False))
    (here / "mapper.yaml").write_text(yaml.safe_dump(mapper(samples), sort_keys=False))
    # the bundled binary with the environment its `run` wrapper sets; the wrapper itself is not used because its
    # library check (`ldconfig -p | grep -q` under `set -o pipefail`) fails at random when grep closes the pipe early
    command = [str(TOOL / "bin" / "timeloop-mapper"), "arch.yaml", "problem.yaml", "mapspace.yaml", "mapper.yaml"]
    env = {**os.environ, "TIMELOOP_DIR": str(TOOL), "LD_LIBRARY_PATH": str(TOOL / "bin")}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=here, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    log = done.stdout + "\n" + done.stderr
    drawn = SAMPLE.findall(log)
    if len(drawn) != samples:
        raise RuntimeError(f"{name}: expected {samples} SAMPLE lines, got {len(drawn)} (is the sample-log patch in?)")
    values = np.array(drawn, dtype=np.float64)
    energy, cycles = values[:, 0], values[:, 1]
    edp = energy * cycles
    best = int(np.argmin(edp))
    last = INVALID.findall(log)[-1]
    shape = PAPER_OPS[name]
    return {
        "shape": {"m": shape.m, "n": shape.n, "k": shape.k},
        "timeloop_problem": problem(shape)["problem"],
        "samples": samples,
        "mapping_ids_drawn": int(last[0]),
        "valid_share_of_ids": samples / int(last[0]),
        "subspace_sizes": {d: int(s) for d, s in DIMENSION.findall(done.stdout)[:4]},
        "best": {"energy_pj": float(energy[best]), "cycles": float(cycles[best]), "edp": float(edp[best])},
        "relative_edp": relative_statistics(edp / edp[best], np.random.default_rng(0)),
        "pat_energy_pj_per_access": per_access_energies((here / "timeloop-mapper.stats.txt").read_text()),
        "wall_seconds": round(seconds, 1),
    }


def check_against(checkout: Path) -> None:
    """The presets load to the same YAML data as Gemmini's files (bypass lists compared as sets)."""

    def normal(data: Any) -> Any:
        if isinstance(data, dict):
            return {k: sorted(v) if k in ("keep", "bypass") else normal(v) for k, v in data.items()}
        if isinstance(data, list):
            return [normal(v) for v in data]
        return data

    for preset, original in (
        ("arch/gemmini.yaml", "modeling/timeloop/arch/arch_default.yaml"),
        ("constraints/gemmini.yaml", "modeling/timeloop/mapspace/mapspace.yaml"),
    ):
        ours = normal(yaml.safe_load((PRESETS / preset).read_text()))
        theirs = normal(yaml.safe_load((checkout / original).read_text()))
        if ours != theirs:
            raise SystemExit(f"preset {preset} differs from {original}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check-against", type=Path, help="a checkout of ucb-bar/gemmini to compare the presets with")
    args = parser.parse_args()
    if args.check_against:
        check_against(args.check_against)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=len(OPS)) as pool:
        results = dict(zip(OPS, pool.map(lambda op: run_op(op, args.samples, Path(tmp)), OPS), strict=True))
    document = {
        "schema": "tstack.timeloop-mapper-samples/1",
        "what": "real Timeloop random-mapper samples (measured), EDP relative to the best sample",
        "measured_on": datetime.date.today().isoformat(),
        "timeloop": {
            "commit": TIMELOOP_COMMIT,
            "build": "../shared/tools/timeloop (patch-mapper-log-samples.diff; pat energies, no Accelergy)",
            "timeloop_mapper_sha256": sha256(TOOL / "bin" / "timeloop-mapper"),
        },
        "files": {
            "arch": "tstack preset timeloop/arch/gemmini.yaml",
            "arch_sha256": sha256(PRESETS / "arch" / "gemmini.yaml"),
            "constraints": "tstack preset timeloop/constraints/gemmini.yaml",
            "constraints_sha256": sha256(PRESETS / "constraints" / "gemmini.yaml"),
            "restating": GEMMINI_FILES + ": modeling/timeloop/arch/arch_default.yaml, mapspace/mapspace.yaml",
            "mapper": mapper(args.samples)["mapper"],
        },
        "command": "timeloop-mapper arch.yaml problem.yaml mapspace.yaml mapper.yaml",
        "regenerate": "python benchmarks/timeloop_mapper_samples.py",
        "bootstrap_resamples": BOOTSTRAP,
        "ops": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(tmp_out, args.out)
    for name, r in results.items():
        rel = r["relative_edp"]
        print(
            f"{name}: p10 {rel['p10']:.2f} +- {rel['p10_stderr']:.2f}, within 3x {100 * rel['within_3x']:.3f}% "
            f"+- {100 * rel['within_3x_stderr']:.3f}%, span {rel['span']:.3g}, {r['mapping_ids_drawn']} IDs for "
            f"{r['samples']} valid, {r['wall_seconds']} s"
        )


if __name__ == "__main__":
    main()
