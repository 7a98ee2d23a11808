"""The paper's published numbers that the study puts beside tstack's, each with where it is printed.

Source: Kim, Hooper et al., *Full Stack Optimization of Transformer Inference* (2023), as digested in the
project's reference (shared/reference/paper-digest.md, §11 "numbers to reproduce"). Values are as printed.
"""

from __future__ import annotations

from typing import Final

SEQ_LENS: Final = (128, 256, 512, 1024, 2048, 4096)

# Figs. 4-6 / Table 3, 11: whole-model GFLOPs and arithmetic intensity vs sequence length (digest §11 rows 1-5)
GFLOPS: Final = {
    "bert-base": (22, 46, 97, 214, 505, 1324),
    "bert-large": (73, 149, 310, 673, 1554, 3942),
    "gpt2": (22, 45, 92, 194, 428, 1012),
}
ARITHMETIC_INTENSITY: Final = {
    "bert-base": (160, 215, 231, 202, 156, 117),
    "bert-large": (171, 239, 266, 235, 179, 131),
}
# Table 3 (BERT-Base, per class AI at l = 128 / 512 / 4096): MHA projections, act-to-act, FFN, other, total
TABLE3_AI: Final = {
    128: (192.00, 63.62, 211.86, 3.14, 159.68),
    512: (438.86, 101.95, 558.54, 2.73, 231.0),
    4096: (702.17, 123.63, 1068.52, 2.16, 117.96),
}
# Fig. 9: CPU latency normalized to BERT-Base at l = 128 (Intel Xeon Gold 6242)
CPU_NORMALIZED_LATENCY: Final = {
    "bert-base": (1, 2, 3, 9, 25, 84),
    "bert-large": (3, 6, 10, 26, 72, 218),
    "gpt2": (45, 93, 201, 427, 965, 2344),
}
# Fig. 14 (BERT at l = 512): baseline Gemmini latency shares (%) and the I-BERT co-design's
FIG14_BASELINE_SHARES: Final = {"matmul": 1, "softmax": 19, "layernorm": 4, "resadd": 11, "dequant": 49, "gelu": 10}
FIG14_IBERT_SHARES: Final = {"matmul+gelu": 87, "softmax": 3, "layernorm": 7, "resadd": 4}
BASELINE_UTILIZATION_BELOW: Final = 0.01  # "less than 1% hardware utilization" (section 3.4)
MEMORY_REBALANCING_MATMUL_CUT: Final = 0.36  # section 3.4.3
HARDWARE_SPEEDUP: Final = 39.6  # section 3.4.4: end-to-end latency, baseline -> I-BERT co-designed Gemmini
# Fig. 13: matmul utilization (%), accumulator kB -> values over scratchpad 64 / 128 / 256 kB
FIG13_UTILIZATION: Final = {64: (66, 71, 69), 128: (91, 91, 88), 256: (91, 91, 90)}
# Fig. 19: 10th-percentile EDP relative to the best, and share of mappings within 3x of the best
MAPSPACE: Final = {
    "bert-base-mha": (9.42, 0.0170),
    "bert-base-ffn": (9.84, 0.0148),
    "resnet50-conv5-3x3-512": (7.44, 0.0158),
    "resnet50-conv5-1x1-2048": (12.06, 0.0262),
}
# Figs. 21-22: relative latency change of a matmul+nonlinear pair when fused (negative = fusion helps), by
# (pair, l, accumulator kB): Q x K + Softmax at l = 512 "at either accumulator size"; l = 4096 and Fig. 22 (W2) at
# 256 kB only
FUSION_CHANGE: Final = {
    ("qk+softmax", 512, 128): -0.78,
    ("qk+softmax", 512, 256): -0.78,
    ("qk+softmax", 4096, 256): -0.22,
    ("out+layernorm", 512, 128): 0.83,
    ("out+layernorm", 512, 256): -0.04,
    ("w2+layernorm", 512, 256): 0.27,
    ("w2+layernorm", 4096, 256): 0.27,
}
# what each of those numbers measures: the pair's total latency, except W_out + LN at 128 kB (the matmul alone)
FUSION_CHANGE_OF_MATMUL: Final = {("out+layernorm", 512, 128)}
# Figs. 21-22's memories: the scratchpad fixed at 256 kB, the accumulator at 128 and 256 kB
FUSION_SCRATCHPAD_KB: Final = 256
FUSION_ACCUMULATOR_KB: Final = (128, 256)
# Table 9 / Figs. 25-26: NAS gains over the 6-layer baseline trained from scratch, per tolerated perplexity increase
NAS_GAINS: Final = {
    0.1: {"latency": 1.4, "energy": 1.6, "edp": 2.24},
    1.0: {"latency": 2.4, "energy": 4.4, "edp": 10.56},
}
END_TO_END: Final = 88.7  # abstract / conclusion: 39.6 (a latency ratio) x 2.24 (an EDP ratio)
