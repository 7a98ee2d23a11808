"""Integer-only encoder forward on a small random BertModel: exactness of the pieces, errors, padding invariance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tstack.errors import TstackError
from tstack.kernels.encoder import IntegerEncoder, ModelLoadError, int_matmul, load_bert
from tstack.kernels.evaluate import compare_embeddings, spearman

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


def _ids(rng: np.random.Generator, batch: int, seq: int) -> np.ndarray:
    return rng.integers(1, 120, (batch, seq))


def _float_hidden(path: Path, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    model = transformers.BertModel.from_pretrained(path, add_pooling_layer=False).eval()
    with torch.inference_mode():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    return out.double().numpy()


def test_integer_forward_tracks_float_forward(tiny_bert: Path) -> None:
    rng = np.random.default_rng(0)
    enc = load_bert(tiny_bert)
    enc.calibrate([(_ids(rng, 8, 24), None) for _ in range(3)])
    ids = _ids(rng, 16, 24)
    mask = np.ones_like(ids)
    h, s = enc.forward(ids, mask)
    assert h.dtype == np.int64 and np.abs(h).max() <= 128
    ref = _float_hidden(tiny_bert, ids, mask)
    cos, _, _ = compare_embeddings(ref.reshape(-1, 64), (h * s).reshape(-1, 64))
    assert cos.mean() > 0.97 and cos.min() > 0.85


def test_padding_does_not_change_real_tokens(tiny_bert: Path) -> None:
    rng = np.random.default_rng(1)
    enc = load_bert(tiny_bert).calibrate([(_ids(rng, 8, 20), None)])
    ids = _ids(rng, 1, 12)
    padded = np.concatenate([ids, np.zeros((1, 5), dtype=np.int64)], axis=1)
    mask = np.concatenate([np.ones((1, 12)), np.zeros((1, 5))], axis=1).astype(np.int64)
    h1, s1 = enc.forward(ids)
    h2, s2 = enc.forward(padded, mask)
    assert s1 == s2
    np.testing.assert_array_equal(h1, h2[:, :12])
    np.testing.assert_allclose(enc.embed(ids), enc.embed(padded, mask))


def test_calibration_is_required_and_frozen(tiny_bert: Path) -> None:
    rng = np.random.default_rng(2)
    enc = load_bert(tiny_bert)
    with pytest.raises(TstackError, match="calibrate"):
        enc.forward(_ids(rng, 1, 4))
    with pytest.raises(TstackError, match="at least one batch"):
        enc.calibrate([])
    enc.calibrate([(_ids(rng, 4, 10), None)])
    before = {k: v.scale for k, v in enc.sites.items()}
    enc.forward(_ids(rng, 4, 10) * 0 + 7)  # an eval forward never moves a calibrated scale
    assert {k: v.scale for k, v in enc.sites.items()} == before


def test_bad_inputs(tiny_bert: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    enc = load_bert(tiny_bert).calibrate([(_ids(rng, 2, 8), None)])
    with pytest.raises(TstackError, match="token ids"):
        enc.forward(np.array([[5, 500]]))
    with pytest.raises(TstackError, match="positions"):
        enc.forward(np.ones((1, 65), dtype=np.int64))
    with pytest.raises(TstackError, match="batch, seq"):
        enc.forward(np.ones(4, dtype=np.int64))
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_bert(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="not a"):
        load_bert(tmp_path)


def test_missing_weight_is_reported() -> None:
    from tstack.kernels.encoder import EncoderConfig

    cfg = EncoderConfig(layers=1, d_model=4, heads=1, d_ff=8, vocab=10, max_positions=8, type_vocab=2)
    with pytest.raises(ModelLoadError, match="word_embeddings"):
        IntegerEncoder.from_state_dict({}, cfg)


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
    # the literal int64 pipeline: same calibration, same integers, with and without padding.
    rng = np.random.default_rng(4)
    calib = [(_ids(rng, 8, 24), None) for _ in range(3)]
    ref = load_bert(tiny_bert)
    ref.fast = False
    ref.calibrate(calib)
    fast = load_bert(tiny_bert).calibrate(calib)
    assert {k: v.absmax for k, v in fast.sites.items()} == {k: v.absmax for k, v in ref.sites.items()}
    assert fast.ln_shift == ref.ln_shift
    for trial in range(3):
        ids = _ids(rng, 5, 20)
        mask = np.ones_like(ids)
        if trial:
            mask[:, 14:] = 0
            mask[0, 3:] = 0
        h_ref, s_ref = ref.forward(ids, mask)
        h, s = fast.forward(ids, mask)
        assert s == s_ref and h.dtype == np.int64
        np.testing.assert_array_equal(h, h_ref)
