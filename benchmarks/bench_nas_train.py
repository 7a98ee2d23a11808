"""How long supernet training of the `cpu` NAS space takes on this machine, and what its sub-networks reach.

Trains the supernet on the shipped corpus with `TrainConfig.cpu()` (BigNAS sandwich: largest, smallest and two random
sub-networks per step), then measures held-out perplexity of the largest, the smallest and a few random
sub-networks; then trains the largest model stand-alone (the paper's baseline, same hyperparameters) for the same
compute: as many steps as the supernet's steps cost, by the ratio of a sandwich step's time to a stand-alone step's
measured back to back (so the comparison does not depend on the load of a shared machine).

Run: python benchmarks/bench_nas_train.py [--threads N] [--steps S] [--out DIR] [--no-baseline]
Writes DIR/results.json (default DIR: a fresh temporary folder) and prints a Markdown summary. Wall times include
other processes' load on a shared machine: the load average and the process CPU time are printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

# OpenMP threads that sleep instead of spinning while they wait: on a shared machine spinning threads slow a
# 2-thread run 5-7x as soon as another process takes a core. Must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from tstack.nas.data import load_corpus
from tstack.nas.evaluate import PerplexityEvaluator
from tstack.nas.space import Architecture
from tstack.nas.supernet import SuperNet
from tstack.nas.train import (
    TrainConfig,
    accumulate_gradients,
    step_architectures,
    torch_threads,
    train_baseline,
    train_supernet,
)
from tstack.spec.nas_space import load_space


def step_cost_ratio(threads: int, config: TrainConfig, steps: int = 8) -> float:
    """Time of a sandwich step over that of a stand-alone step of the largest model, measured back to back.

    Both include forward, backward and the Adam update; each is the best of 2 (sandwich: the architectures of the
    first `steps` training steps, averaged) or of `steps` (baseline) runs, so load on a shared machine cancels.
    """
    space = load_space("cpu")
    net = SuperNet(space)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr_peak)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, space.vocab_size, (config.batch_size, space.seq_len + 1), generator=gen)

    def best(archs: list[Architecture], repeats: int) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            opt.zero_grad()
            accumulate_gradients(net, archs, x[:, :-1], x[:, 1:])
            opt.step()
            times.append(time.perf_counter() - start)
        return min(times)

    with torch_threads(threads):
        best([space.largest()], 1)  # warm-up
        sandwich = [best(step_architectures("supernet", space, config, k), 2) for k in range(steps)]
        baseline = best([space.largest()], steps)
    return sum(sandwich) / len(sandwich) / baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="override TrainConfig.cpu().steps")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--random", type=int, default=5, help="random sub-networks to evaluate")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-nas-train-"))
    space = load_space("cpu")
    corpus = load_corpus(None)
    config = TrainConfig.cpu() if args.steps is None else TrainConfig.cpu(steps=args.steps)
    results: dict[str, object] = {"threads": args.threads, "config": config.to_dict(), "space": space.to_dict()}

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {msg}", flush=True)

    def progress(step: int, total: int, loss: float) -> None:
        if step % 50 == 0 or step == total:
            log(f"step {step}/{total} loss {loss:.3f}")

    start, cpu_start, load_start = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    ckpt = train_supernet(space, corpus, out / "supernet", config, progress=progress, threads=args.threads)
    supernet_s, supernet_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    load = (load_start + os.getloadavg()[0]) / 2
    log(f"supernet trained in {supernet_s:.1f} s wall, {supernet_cpu_s:.1f} s CPU (load ~{load:.1f})")
    ev = PerplexityEvaluator(ckpt, corpus, threads=args.threads)
    rng = np.random.default_rng(2024)
    archs: list[tuple[str, Architecture]] = [("largest", space.largest()), ("smallest", space.smallest())]
    archs += [(f"random {i + 1}", space.sample(rng)) for i in range(args.random)]
    rows = []
    for name, arch in archs:
        t0 = time.perf_counter()
        ppl = ev.perplexity(arch)
        rows.append({"name": name, "arch": arch.key, "ppl": ppl, "eval_s": time.perf_counter() - t0})
        log(f"{name:9s} {arch.key:52s} ppl {ppl:8.2f}  ({rows[-1]['eval_s']:.2f} s)")
    results.update(
        supernet_wall_s=supernet_s, supernet_cpu_s=supernet_cpu_s, load=load, eval_tokens=ev.n_tokens, subnets=rows
    )

    if not args.no_baseline:
        ratio = step_cost_ratio(args.threads, config)
        steps = max(1, round(config.steps * ratio)) if config.steps else 1
        base_config = TrainConfig.cpu(steps=steps)
        log(f"a sandwich step costs {ratio:.2f} stand-alone steps -> baseline of {steps} steps")
        start, cpu_start = time.perf_counter(), time.process_time()
        bckpt = train_baseline(space, corpus, out / "baseline", base_config, progress=progress, threads=args.threads)
        baseline_s, baseline_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        bppl = PerplexityEvaluator(bckpt, corpus, threads=args.threads).perplexity(space.largest())
        log(f"baseline ({steps} steps, {baseline_s:.1f} s wall, {baseline_cpu_s:.1f} s CPU): ppl {bppl:.2f}")
        results.update(
            step_cost_ratio=ratio,
            baseline_steps=steps,
            baseline_wall_s=baseline_s,
            baseline_cpu_s=baseline_cpu_s,
            baseline_ppl=bppl,
        )

    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"\nresults in {out / 'results.json'}\n")
    print(
        f"supernet: {config.steps} sandwich steps in {supernet_s:.0f} s wall, {supernet_cpu_s:.0f} s CPU "
        f"({args.threads} threads, load average ~{load:.1f})\n"
    )
    print("| sub-network | architecture | perplexity |\n|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | `{r['arch']}` | {r['ppl']:.1f} |")
    if not args.no_baseline:
        print(f"| stand-alone baseline, same compute ({results['baseline_steps']} steps) | largest | {bppl:.1f} |")


if __name__ == "__main__":
    main()
