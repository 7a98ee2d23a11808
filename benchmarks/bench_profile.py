"""Full-size profiles on this CPU: BERT-Base at several lengths, GPT-2 generation, a Llama-style decoder.

Shows the issue's must-haves at full size (the unit tests use small models): classified time >= 95% of profiled
self time, shares per class against sequence length (the paper's Figs. 7-8), latency normalized to BERT-Base at
the shortest length (Fig. 9), and `--compare`: predicted vs. measured share per class against a device calibrated
in the same run. The Llama-style model is Llama's structure at GPT-2 scale (12 layers, d = 768, GQA 12/4 heads,
SwiGLU d_ff 2048, 32k vocabulary), since Llama-2-7B does not fit in fp32 on small machines.

On a GPU (`--device cuda`) the breakdown is GPU kernel time per op and the calibration is the GPU's (fp32 GEMM,
attention matmul, copy); benchmarks/cuda_profile.sh runs it with the profile tests on a machine with a GPU.

Run: python benchmarks/bench_profile.py [--device cpu|cuda] [--threads N] [--seq 128,256,512] [--gen-seq 128]
     [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import tstack
from tstack.profile import MATMUL_CLASSES, ProfileResult, profile
from tstack.profile.calibrate import calibrate
from tstack.profile.compare import calibration_for, compare
from tstack.workload import Activation, Family, ModelSpec, Norm, NormPlacement, Phase, PositionEmbedding


def llama_style(n: int = 12) -> ModelSpec:
    return ModelSpec(
        "llama-style-base",
        Family.DECODER,
        n,
        768,
        (12,) * n,
        (4,) * n,
        (2048,) * n,
        64,
        activation=Activation.SWIGLU,
        norm=Norm.RMSNORM,
        norm_placement=NormPlacement.PRE,
        vocab_size=32000,
        max_positions=2048,
        position_embedding=PositionEmbedding.ROTARY,
        attn_bias=False,
        mlp_bias=False,
        final_norm=True,
    )


def row(r: ProfileResult) -> dict[str, Any]:
    return {
        "model": r.model.name,
        "phase": r.phase.value,
        "seq_len": r.seq_len,
        "threads": r.threads,
        "wall_min_s": r.wall.min_s,
        "wall_median_s": r.wall.median_s,
        "profiled_s": r.profiled_s,
        "coverage": r.coverage,
        "shares": r.shares(),
        "warnings": list(r.warnings),
    }


def report(results: tuple[ProfileResult, ...], base: float, out: dict[str, Any]) -> None:
    for r in results:
        d = row(r)
        d["normalized_latency"] = r.wall.min_s / base
        out["runs"].append(d)
        print(
            f"{r.model.name:18} {r.phase.value:8} l={r.seq_len:5} wall {r.wall.min_s * 1e3:9.1f} ms "
            f"(x{r.wall.min_s / base:6.1f})  coverage {r.coverage:.2%}  "
            + " ".join(f"{c}={v:.1%}" for c, v in r.shares().items() if v >= 0.001),
            file=sys.stderr,
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="default: 1 on the CPU, torch's own with a GPU")
    parser.add_argument("--seq", default="128,256,512")
    parser.add_argument("--gen-seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    seqs = tuple(int(s) for s in args.seq.split(","))
    threads = args.threads if args.threads is not None or args.device != "cpu" else 1
    out: dict[str, Any] = {"device": args.device, "threads": threads, "runs": [], "compare": []}

    start = time.perf_counter()
    cal = calibrate(device=args.device, threads=threads, repeats=7)
    out["calibration"] = {
        "matmul_flops_per_s": cal.matmul_flops_per_s,
        "attention_matmul_flops_per_s": cal.attention_matmul_flops_per_s,
        "mem_bandwidth_bytes_per_s": cal.mem_bandwidth_bytes_per_s,
    }
    print(cal.describe(), file=sys.stderr)
    kw: dict[str, Any] = {"device": args.device, "threads": threads, "repeats": args.repeats, "rounds": args.rounds}
    bert = profile(tstack.load_model("bert-base"), seqs, **kw)
    base = bert[0].wall.min_s
    report(bert, base, out)
    gpt2 = profile(tstack.load_model("gpt2"), (args.gen_seq,), phase=Phase.GENERATE, **kw)
    report(gpt2, base, out)
    llama = profile(llama_style(), (args.gen_seq,), phase=Phase.GENERATE, **kw)
    report(llama, base, out)
    for r in (*bert, *gpt2):
        for cmp in (compare(r, calibration=calibration_for(r, cal)), compare(r, device=cal.to_device())):
            rows = {c.op_class: [c.predicted_share, c.measured_share] for c in cmp.classes}
            worst = max(abs(cmp.of(c).share_error_points) for c in MATMUL_CLASSES)
            out["compare"].append(
                {"model": r.model.name, "seq_len": r.seq_len, "method": cmp.method, "shares": rows, "worst": worst}
            )
            print(
                f"compare {r.model.name} l={r.seq_len} {cmp.method:10} worst matmul-class error {worst:5.1f} pt  "
                + " ".join(f"{c}: {p:.1%} vs {m:.1%}" for c, (p, m) in rows.items() if c in MATMUL_CLASSES),
                file=sys.stderr,
            )
    out["elapsed_s"] = time.perf_counter() - start
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
