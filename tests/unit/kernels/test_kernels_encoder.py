"""Integer-only encoder forward on a small random BertModel: the calibrate step and its frozen encoder, exactness of
the pieces, errors, padding invariance, and the two pipelines' agreement."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tstack.errors import TstackError
from tstack.kernels.encoder import Pipeline, calibrate, embed, fast_forward, reference_forward
from tstack.kernels.encoder_weights import (
    EncoderConfig,
    EncoderWeights,
    ModelLoadError,
    encoder_config,
    load_bert,
    quantize_weights,
)
from tstack.kernels.evaluate import compare_embeddings, spearman
from tstack.kernels.gemm import int_matmul
from tstack.spec import load_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = transformers.BertConfig(
        vocab_size=120,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    model = transformers.BertModel(cfg, add_pooling_layer=False).eval()
    path = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(path)
    return path


def _weights(path: Path) -> EncoderWeights:
    return load_bert(path, encoder_config(load_model(path)))


def _ids(rng: np.random.Generator, batch: int, seq: int) -> np.ndarray:
    return rng.integers(1, 120, (batch, seq))


def _float_hidden(path: Path, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    model = transformers.BertModel.from_pretrained(path, add_pooling_layer=False).eval()
    with torch.inference_mode():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    return out.double().numpy()


def test_integer_forward_tracks_float_forward(tiny_bert: Path) -> None:
    rng = np.random.default_rng(0)
    enc = calibrate(_weights(tiny_bert), [(_ids(rng, 8, 24), None) for _ in range(3)])
    ids = _ids(rng, 16, 24)
    mask = np.ones_like(ids)
    out = fast_forward(enc, ids, mask)
    h, s = out.values, out.scale
    assert h.dtype == np.int64 and np.abs(h).max() <= 128
    ref = _float_hidden(tiny_bert, ids, mask)
    cos, _, _ = compare_embeddings(ref.reshape(-1, 64), (h * s).reshape(-1, 64))
    assert cos.mean() > 0.97 and cos.min() > 0.85


def test_padding_does_not_change_real_tokens(tiny_bert: Path) -> None:
    rng = np.random.default_rng(1)
    enc = calibrate(_weights(tiny_bert), [(_ids(rng, 8, 20), None)])
    ids = _ids(rng, 1, 12)
    padded = np.concatenate([ids, np.zeros((1, 5), dtype=np.int64)], axis=1)
    mask = np.concatenate([np.ones((1, 12)), np.zeros((1, 5))], axis=1).astype(np.int64)
    for forward in (fast_forward, reference_forward):
        plain, masked = forward(enc, ids), forward(enc, padded, mask)
        assert plain.scale == masked.scale
        np.testing.assert_array_equal(plain.values, masked.values[:, :12])
    np.testing.assert_allclose(embed(enc, ids), embed(enc, padded, mask))


def test_calibration_needs_a_batch_and_is_never_moved_by_a_forward(tiny_bert: Path) -> None:
    rng = np.random.default_rng(2)
    weights = _weights(tiny_bert)
    with pytest.raises(TstackError, match="at least one batch"):
        calibrate(weights, [])
    enc = calibrate(weights, [(_ids(rng, 4, 10), None)])
    before = enc.calibration.absmax()
    fast_forward(enc, _ids(rng, 4, 10) * 0 + 7)  # an eval forward never moves a calibrated scale
    reference_forward(enc, _ids(rng, 4, 10) * 0 + 9)
    assert enc.calibration.absmax() == before


def test_calibrated_encoder_is_frozen(tiny_bert: Path) -> None:
    rng = np.random.default_rng(5)
    enc = calibrate(_weights(tiny_bert), [(_ids(rng, 4, 10), None)])
    with pytest.raises(dataclasses.FrozenInstanceError):
        enc.calibration = enc.calibration  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        enc.calibration.ranges[0].absmax = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        enc.weights.linears["0.q"] = enc.weights.linears["0.k"]  # type: ignore[index]
    for array in (enc.weights.word.values, enc.weights.linears["0.q"].w_int32, enc.weights.layernorms["emb"].weight):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1


def test_calibrating_twice_on_the_same_data_gives_equal_encoders(tiny_bert: Path) -> None:
    rng = np.random.default_rng(6)
    weights = _weights(tiny_bert)
    data = [(_ids(rng, 6, 16), None) for _ in range(2)]
    first, second = calibrate(weights, data), calibrate(weights, data)
    assert first == second and hash(first) == hash(second)
    assert first.calibration.batches == 2
    other = calibrate(weights, [(_ids(rng, 6, 16), None)])
    assert other != first  # different data, different ranges
    ids = _ids(rng, 3, 12)
    np.testing.assert_array_equal(fast_forward(first, ids).values, fast_forward(second, ids).values)


def test_an_uncalibrated_site_is_an_error(tiny_bert: Path) -> None:
    rng = np.random.default_rng(7)
    enc = calibrate(_weights(tiny_bert), [(_ids(rng, 2, 8), None)])
    missing = dataclasses.replace(
        enc, calibration=dataclasses.replace(enc.calibration, ranges=enc.calibration.ranges[1:])
    )
    for forward in (fast_forward, reference_forward):
        with pytest.raises(TstackError, match="never calibrated"):
            forward(missing, _ids(rng, 2, 8))


def test_bad_inputs(tiny_bert: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    enc = calibrate(_weights(tiny_bert), [(_ids(rng, 2, 8), None)])
    with pytest.raises(TstackError, match="token ids"):
        fast_forward(enc, np.array([[5, 500]]))
    with pytest.raises(TstackError, match="positions"):
        reference_forward(enc, np.ones((1, 65), dtype=np.int64))
    with pytest.raises(TstackError, match="batch, seq"):
        fast_forward(enc, np.ones(4, dtype=np.int64))
    config = encoder_config(load_model(tiny_bert))
    with pytest.raises(ModelLoadError, match=r"model\.safetensors"):
        load_bert(tmp_path, config)
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ModelLoadError, match="not a GELU BERT-family encoder"):
        encoder_config(load_model(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_act": "relu"}')
    with pytest.raises(ModelLoadError, match="activation 'relu'"):
        encoder_config(load_model(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_bert(tmp_path, config)


def test_the_spec_parser_refuses_what_the_integer_forward_cannot_run(tmp_path: Path) -> None:
    from tstack.errors import UnsupportedModelError

    (tmp_path / "config.json").write_text('{"model_type": "bert", "position_embedding_type": "relative_key"}')
    with pytest.raises(UnsupportedModelError, match="position_embedding_type"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "ibert", "num_hidden_layers": 2}')
    assert encoder_config(load_model(tmp_path)).layers == 2


def test_missing_weight_is_reported() -> None:
    cfg = EncoderConfig(layers=1, d_model=4, heads=1, d_ff=8, vocab=10, max_positions=8, type_vocab=2)
    with pytest.raises(ModelLoadError, match="word_embeddings"):
        quantize_weights({}, cfg)


@pytest.mark.parametrize("k", [16, 384, 1536, 5000])
def test_int_matmul_exact(k: int) -> None:
    rng = np.random.default_rng(k)
    a = rng.integers(-128, 128, (7, k))
    b = rng.integers(-127, 128, (k, 9))
    got = int_matmul(a, b.astype(np.float64), 128, 127)
    np.testing.assert_array_equal(got, a @ b)
    big = rng.integers(-(2**20), 2**20, (3, k))
    np.testing.assert_array_equal(int_matmul(big, b.astype(np.float64), 2**20, 127), big @ b)


def test_spearman_and_neighbours() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    e = rng.normal(size=(20, 8))
    cos, rho, nn = compare_embeddings(e, e + 1e-9)
    assert cos.min() > 0.999999 and rho > 0.9999 and nn == 1.0
    cos, _, nn = compare_embeddings(e, rng.normal(size=(20, 8)))
    assert cos.mean() < 0.5 and nn < 0.5


def test_fast_path_gives_the_reference_integers(tiny_bert: Path) -> None:
    # The fast implementation (float32 GEMM operands, exact float64 requantization, int32 kernel cores) against
    # the literal int64 pipeline: calibrated by either, the same ranges; run on either calibration, the same
    # integers, with and without padding.
    rng = np.random.default_rng(4)
    calib = [(_ids(rng, 8, 24), None) for _ in range(3)]
    weights = _weights(tiny_bert)
    ref = calibrate(weights, calib, pipeline=Pipeline.REFERENCE)
    fast = calibrate(weights, calib)
    assert fast.calibration.absmax() == ref.calibration.absmax()
    assert fast.calibration.shifts() == ref.calibration.shifts()
    assert fast == ref
    for trial in range(3):
        ids = _ids(rng, 5, 20)
        mask = np.ones_like(ids)
        if trial:
            mask[:, 14:] = 0
            mask[0, 3:] = 0
        want = reference_forward(ref, ids, mask)
        got = fast_forward(fast, ids, mask)
        assert got.scale == want.scale and got.values.dtype == np.int64
        np.testing.assert_array_equal(got.values, want.values)
