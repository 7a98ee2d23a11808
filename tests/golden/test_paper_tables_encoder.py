"""Tables 3 and 10 of Kim, Hooper et al. 2023 (arXiv 2302.14017), reproduced with the paper-2023 convention.

Printed values are copied from the paper (digest §2.2.1). Each cell is compared at the precision the paper prints
(FLOPs and MOPs in units of 1e9, AI with two decimals). The paper's last digits are sometimes rounded (half to
even, as printf does: 63.625 -> 63.62) and sometimes truncated (46.54% -> 46, 558.545 -> 558.54); a cell matches
if it equals either. Cells the paper itself gets wrong under both are listed in KNOWN_PAPER_ERRORS with the
reason, and checked to be what tstack's formula gives instead.
"""

from __future__ import annotations

import pytest

import tstack
from tests.golden.paper_digits import matches as _matches
from tests.golden.paper_digits import rounded as _fmt

# (seq, group): (GFLOPs, %FLOPs, GMOPs, %MOPs, AI) as printed; % columns of Table 10 are fractions there.
TABLE_3 = {
    (128, "mha_proj"): ("7.25", "32", "0.04", "27", "192.00"),
    (128, "mha_act"): ("0.60", "3", "0.006", "7", "63.62"),
    (128, "ffn_proj"): ("14.50", "65", "0.07", "49", "211.86"),
    (128, "other"): ("0.08", "0.3", "0.02", "18", "3.14"),
    (128, "total"): ("22.42", "100", "0.14", "100", "159.68"),
    (512, "mha_proj"): ("28.99", "30", "0.07", "16", "438.86"),
    (512, "mha_act"): ("9.62", "10", "0.09", "20", "101.95"),
    (512, "ffn_proj"): ("57.98", "60", "0.10", "25", "558.54"),
    (512, "other"): ("0.42", "0.4", "0.16", "37", "2.73"),
    (512, "total"): ("97.02", "100", "0.42", "100", "231.0"),
    (4096, "mha_proj"): ("231.93", "18", "0.33", "3", "702.17"),
    (4096, "mha_act"): ("616.02", "46", "4.98", "44", "123.63"),
    (4096, "ffn_proj"): ("463.86", "35", "0.43", "4", "1068.52"),
    (4096, "other"): ("11.85", "1", "5.47", "49", "2.16"),
    (4096, "total"): ("1323.66", "100", "11.22", "100", "117.96"),
}

TABLE_10 = {
    (128, "mha_proj"): ("7.25", "0.32", "0.04", "0.28", "192.00"),
    (128, "mha_act"): ("0.60", "0.03", "0.01", "0.047", "95.69"),
    (128, "ffn_proj"): ("14.47", "0.65", "0.07", "0.51", "211.86"),
    (128, "other"): ("0.07", "0.003", "0.02", "0.16", "3.30"),
    (128, "total"): ("22.42", "1", "0.13", "1", "167.14"),
    (512, "mha_proj"): ("28.99", "0.30", "0.07", "0.21", "438.86"),
    (512, "mha_act"): ("9.65", "0.10", "0.04", "0.14", "219.04"),
    (512, "ffn_proj"): ("57.98", "0.60", "0.10", "0.32", "558.54"),
    (512, "other"): ("0.32", "0.003", "0.10", "0.33", "3.07"),
    (512, "total"): ("96.94", "1", "0.32", "1", "303.59"),
    (4096, "mha_proj"): ("231.93", "0.18", "0.33", "0.07", "702.17"),
    (4096, "mha_act"): ("617.63", "0.47", "1.76", "0.37", "350.61"),
    (4096, "ffn_proj"): ("463.86", "0.35", "0.43", "0.09", "1068.52"),
    (4096, "other"): ("5.41", "0.004", "2.25", "0.47", "2.40"),
    (4096, "total"): ("1318.83", "1", "4.78", "1", "276.00"),
}

# (table, seq, group, column index): (what the formula gives, why the printed cell differs)
KNOWN_PAPER_ERRORS = {
    ("3", 128, "mha_act", 2): (
        "0.009",
        "printed 0.006 contradicts its own AI: 0.60 GFLOPs / 63.62 = 0.0094 GMOPs",
    ),
    ("3", 512, "mha_act", 3): ("22", "0.0944 of 0.4200 GMOPs is 22.5%; printed 20"),
    ("10", 128, "ffn_proj", 0): (
        "14.50",
        "Table 3 prints 14.50 for the same op; 2*2*768*3072*128*12 = 14.496e9",
    ),
}


def _cells(model: str, seqs: list[int], fractions: bool) -> dict[tuple[int, str], tuple[float, ...]]:
    analysis = tstack.analyze(model, seqs, convention="paper-2023")
    out = {}
    scale = 1 if fractions else 100
    for r in analysis.results:
        whole = r.total
        rows = {**r.by_group(), "total": whole}
        for group, t in rows.items():
            out[(r.workload.seq_len, group)] = (
                t.flops / 1e9,
                scale * t.flops / whole.flops,
                t.mops_bytes / 1e9,
                scale * t.mops_bytes / whole.mops_bytes,
                t.arithmetic_intensity,
            )
    return out


@pytest.mark.parametrize(
    ("table", "model", "printed", "fractions"),
    [("3", "bert-base", TABLE_3, False), ("10", "bert-base-4heads", TABLE_10, True)],
)
def test_reproduces_printed_digits(table: str, model: str, printed: dict, fractions: bool) -> None:
    ours = _cells(model, [128, 512, 4096], fractions)
    mismatches = []
    for key, row in printed.items():
        for col, text in enumerate(row):
            known = KNOWN_PAPER_ERRORS.get((table, *key, col))
            if known is not None:
                expected_by_formula = known[0]
                assert _fmt(ours[key][col], expected_by_formula) == expected_by_formula, (key, col)
                continue
            if not _matches(ours[key][col], text):
                mismatches.append(f"{key} col {col}: printed {text}, tstack {ours[key][col]}")
    assert not mismatches, "\n".join(mismatches)


def test_figure_4_to_6_bert_base_series() -> None:
    """Figs. 4-6 data labels for BERT-Base: GFLOPs, GMOPs and AI at 128..4096 (rounded as printed)."""
    a = tstack.analyze("bert-base", list(tstack.PAPER_SEQ_LENS), convention="paper-2023")
    gflops = [round(r.total.flops / 1e9) for r in a.results]
    gmops = [round(r.total.mops_bytes / 1e9, 1) for r in a.results]
    ai = [r.total.arithmetic_intensity for r in a.results]
    assert gflops == [22, 46, 97, 214, 505, 1324]
    assert gmops == [0.1, 0.2, 0.4, 1.1, 3.2, 11.2]
    for got, label in zip(ai, ["160", "215", "231", "202", "156", "117"], strict=True):
        assert _matches(got, label), (got, label)


def test_figure_4_5_bert_large_with_the_papers_missing_projection() -> None:
    """Fig. 4's BERT-Large GFLOPs equal the formula minus one d x d projection per layer (2 d^2 l N): the paper's
    BERT-Large series is internally inconsistent (digest §2.2.1a). tstack reports the formula; this test pins
    the size of the discrepancy. Fig. 5 (MOPs) matches as is. Fig. 6 (AI) matches neither (171 printed at
    l = 128, against 176 by the formula and 162 with the missing projection), so it is not asserted."""
    a = tstack.analyze("bert-large", list(tstack.PAPER_SEQ_LENS), convention="paper-2023")
    d, n = 1024, 24
    for r, gflops, gmops in zip(
        a.results, ["73", "149", "310", "673", "1554", "3942"], ["0.4", "0.6", "1.2", "2.9", "8.7", "29.9"], strict=True
    ):
        missing = 2 * d * d * r.workload.seq_len * n
        assert _matches((r.total.flops - missing) / 1e9, gflops)
        assert not _matches(r.total.flops / 1e9, gflops)
        assert _matches(r.total.mops_bytes / 1e9, gmops)
