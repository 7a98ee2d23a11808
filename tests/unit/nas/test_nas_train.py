"""NAS supernet and training: slicing equals a stand-alone model (and HF GPT-2), the sandwich averages four gradients,
training resumes to identical weights, perplexity is really measured and falls with training."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from tstack.errors import DataError, SpecError
from tstack.nas.data import Corpus, load_corpus
from tstack.nas.evaluate import PerplexityEvaluator
from tstack.nas.space import Architecture, SearchSpace, space_from_dict
from tstack.nas.supernet import DecoderLM, SuperNet, extract_subnet
from tstack.nas.train import (
    TrainConfig,
    accumulate_gradients,
    load_checkpoint,
    step_architectures,
    step_batch,
    train_baseline,
    train_supernet,
)
from tstack.spec.nas_space import load_space

TINY = {
    "name": "tiny",
    "layers": [1, 2, 3],
    "heads": [2, 3, 4],
    "d_model": [16, 24, 32],
    "d_ff": [16, 32, 48, 64],
    "head_dim": 8,
    "seq_len": 16,
    "vocab_size": 300,
}


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return space_from_dict(TINY)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    full = load_corpus(None)
    return Corpus(full.train_text[:20_000], full.valid_text[:4_000], "persuasion excerpt")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Bit-identical resumption needs the same thread count; one thread also keeps a shared machine responsive.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def randomized(space: SearchSpace, seed: int = 1) -> SuperNet:
    """A supernet whose every parameter (LayerNorm and biases too) is random, so any slicing mistake shows."""
    net = SuperNet(space, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (1.0 if p.ndim == 1 else 0.0))
    return net


def tokens(space: SearchSpace, batch: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, space.vocab_size, (batch, space.seq_len), generator=torch.Generator().manual_seed(seed))


def test_every_subnetwork_equals_a_standalone_model_of_its_sliced_weights(space: SearchSpace) -> None:
    net = randomized(space)
    x = tokens(space)
    rng = np.random.default_rng(0)
    archs = [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(6))]
    for arch in archs:
        model = DecoderLM(space, arch)
        model.load_state_dict(extract_subnet(net, arch))
        with torch.no_grad():
            torch.testing.assert_close(net(x, arch), model(x), rtol=1e-5, atol=1e-5)
        net.set_active(arch)
        with torch.no_grad():
            torch.testing.assert_close(net(x), model(x), rtol=1e-5, atol=1e-5)
    # A sub-network ignores every weight outside its slice.
    arch = Architecture(2, 16, (2, 3), (16, 32))
    before = net(x, arch).detach()
    with torch.no_grad():
        net.blocks[0].q_w[16:, :] += 5.0  # heads beyond the 2 active ones
        net.blocks[1].fc1_w[:, 16:] += 5.0  # input channels beyond d = 16
        net.blocks[2].fc2_w += 5.0  # a third layer
        net.wte[:, 16:] += 5.0
    torch.testing.assert_close(net(x, arch).detach(), before)


def test_split_rule_subnetwork_equals_standalone() -> None:
    split = space_from_dict({**TINY, "head_rule": "split", "heads": [2, 4], "d_model": [16, 32]})
    net = randomized(split, seed=3)
    arch = Architecture(2, 16, (4, 4), (64, 16))
    model = DecoderLM(split, arch)
    model.load_state_dict(extract_subnet(net, arch))
    assert model.blocks[0].q_w.shape == (16, 16)  # Q/K/V are d wide, 4 heads of 4
    x = tokens(split)
    with torch.no_grad():
        torch.testing.assert_close(net(x, arch), model(x), rtol=1e-5, atol=1e-5)


def test_subnetwork_equals_hugging_face_gpt2_with_the_same_weights(space: SearchSpace) -> None:
    transformers = pytest.importorskip("transformers")
    net = randomized(space, seed=5)
    # heads x head_dim == d (4 x 8 = 32), uniform d_ff: a shape GPT-2 can hold.
    arch = Architecture(2, 32, (4, 4), (48, 48))
    w = extract_subnet(net, arch)
    config = transformers.GPT2Config(
        vocab_size=space.vocab_size,
        n_positions=space.seq_len,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_inner=48,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    gpt2 = transformers.GPT2LMHeadModel(config).eval()
    sd = {"transformer.wte.weight": w["wte"], "transformer.wpe.weight": w["wpe"], "lm_head.weight": w["wte"]}
    sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"] = w["lnf_w"], w["lnf_b"]
    for i in range(2):
        p, b = f"transformer.h.{i}.", f"blocks.{i}."
        # GPT-2's Conv1D stores weights as [in, out]: the transpose of a Linear's.
        sd[p + "attn.c_attn.weight"] = torch.cat([w[b + "q_w"], w[b + "k_w"], w[b + "v_w"]]).T
        sd[p + "attn.c_attn.bias"] = torch.cat([w[b + "q_b"], w[b + "k_b"], w[b + "v_b"]])
        sd[p + "attn.c_proj.weight"], sd[p + "attn.c_proj.bias"] = w[b + "o_w"].T, w[b + "o_b"]
        sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"] = w[b + "fc1_w"].T, w[b + "fc1_b"]
        sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"] = w[b + "fc2_w"].T, w[b + "fc2_b"]
        for ln in ("1", "2"):
            sd[p + f"ln_{ln}.weight"], sd[p + f"ln_{ln}.bias"] = w[b + f"ln{ln}_w"], w[b + f"ln{ln}_b"]
    missing, unexpected = gpt2.load_state_dict(sd, strict=False)
    assert not unexpected and all("attn.bias" in k or "masked_bias" in k for k in missing)
    x = tokens(space)
    with torch.no_grad():
        torch.testing.assert_close(net(x, arch), gpt2(x).logits, rtol=1e-4, atol=1e-4)


def test_sandwich_gradient_is_the_mean_of_the_four_subnetwork_gradients(space: SearchSpace) -> None:
    config = TrainConfig(steps=10, seed=7)
    archs = step_architectures("supernet", space, config, 3)
    assert archs[0] == space.largest() and archs[1] == space.smallest() and len(archs) == 4
    assert all(space.contains(a) for a in archs)
    assert archs == step_architectures("supernet", space, config, 3)  # a function of (seed, step)
    assert step_architectures("baseline", space, config, 3) == [space.largest()]
    net = randomized(space)
    x = tokens(space)
    y = tokens(space, seed=1)
    separate = []
    for arch in archs:
        net.zero_grad(set_to_none=False)
        F.cross_entropy(net(x, arch).flatten(0, 1), y.flatten()).backward()
        separate.append([p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()])
    net.zero_grad(set_to_none=True)
    losses = accumulate_gradients(net, archs, x, y)
    assert len(losses) == 4 and len(set(losses)) == 4
    for i, p in enumerate(net.parameters()):
        expected = sum(g[i] for g in separate) / 4
        assert p.grad is not None
        torch.testing.assert_close(p.grad, expected, rtol=1e-5, atol=1e-7)


def test_batches_cover_each_window_once_per_epoch() -> None:
    config = TrainConfig(steps=100, batch_size=4, seed=3)
    n = 10
    seen = np.concatenate([step_batch(n, config, s) for s in range(5)])  # 20 slots = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert not np.array_equal(seen[:10], seen[10:])


def test_config_validation_schedule_and_presets() -> None:
    with pytest.raises(SpecError, match="exactly one"):
        TrainConfig(steps=10, epochs=1.0)
    with pytest.raises(SpecError, match="exactly one"):
        TrainConfig()
    with pytest.raises(SpecError, match="lr_peak"):
        TrainConfig(steps=10, lr_peak=0.0)
    config = TrainConfig(steps=100, lr_peak=1e-3, warmup_fraction=0.1)
    lrs = [config.lr_at(s, 100) for s in range(100)]
    assert lrs[9] == pytest.approx(1e-3) and lrs[0] == pytest.approx(1e-4)
    assert lrs[10] == pytest.approx(1e-3) and lrs[99] == pytest.approx(1e-3 / 90)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    paper = TrainConfig.paper()
    assert (paper.epochs, paper.batch_size, paper.seq_len, paper.weight_decay) == (50.0, 16, 512, 0.0)
    assert paper.lr_peak in (5e-5, 2e-5, 1e-5, 0.5e-5)
    assert paper.total_steps(36_000) == math.ceil(50 * 36_000 / 16)
    assert TrainConfig.cpu(seed=4).seed == 4
    assert TrainConfig.from_dict(TrainConfig.cpu().to_dict()) == TrainConfig.cpu()


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]  # type: ignore[no-any-return]


class InterruptError(Exception):
    pass


def test_interrupted_training_resumes_to_identical_weights(space: SearchSpace, corpus: Corpus, tmp_path: Path) -> None:
    config = TrainConfig(steps=20, batch_size=4, lr_peak=3e-3, warmup_fraction=0.1, checkpoint_interval_steps=5)
    straight = train_supernet(space, corpus, tmp_path / "straight", config, cache_dir=tmp_path)

    def die_at_13(step: int, total: int, loss: float) -> None:
        assert math.isfinite(loss) and total == 20
        if step == 13:
            raise InterruptError

    with pytest.raises(InterruptError):
        train_supernet(space, corpus, tmp_path / "resumed", config, progress=die_at_13, cache_dir=tmp_path)
    assert load_checkpoint(tmp_path / "resumed")["step"] == 10  # the last checkpoint before the kill
    steps: list[int] = []
    resumed = train_supernet(
        space,
        corpus,
        tmp_path / "resumed",
        config,
        progress=lambda step, total, loss: steps.append(step),
        cache_dir=tmp_path,
    )
    assert steps == list(range(11, 21))  # no step repeated after the checkpoint, none skipped
    ckpt = load_checkpoint(resumed)
    assert ckpt["step"] == 20 and [r["step"] for r in ckpt["history"]] == list(range(1, 21))
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # A finished run is not trained again; another config in the same out_dir is refused.
    assert train_supernet(space, corpus, tmp_path / "resumed", config, progress=die_at_13, cache_dir=tmp_path)
    with pytest.raises(DataError, match="lr_peak"):
        train_supernet(space, corpus, tmp_path / "resumed", TrainConfig(steps=20, batch_size=4), cache_dir=tmp_path)


def test_perplexity_is_measured_on_held_out_tokens_and_falls_with_training(
    space: SearchSpace, corpus: Corpus, tmp_path: Path
) -> None:
    short = TrainConfig(steps=2, batch_size=8, lr_peak=3e-3)
    long = TrainConfig(steps=80, batch_size=8, lr_peak=3e-3, warmup_fraction=0.05, eval_interval_steps=40)
    early = PerplexityEvaluator(train_supernet(space, corpus, tmp_path / "a", short, cache_dir=tmp_path), corpus)
    path = train_supernet(space, corpus, tmp_path / "b", long, cache_dir=tmp_path, threads=1)
    late = PerplexityEvaluator(path, corpus, max_tokens=1000)
    assert late.n_tokens == 1000
    largest, smallest = space.largest(), space.smallest()
    ppl_early, ppl_late = early.perplexity(largest), late.perplexity(largest)
    assert math.isfinite(ppl_late) and ppl_late < ppl_early < 2 * space.vocab_size
    assert late.perplexity(smallest) > ppl_late  # the largest sub-network wins after supernet training
    history = load_checkpoint(path)["history"]
    assert history[79]["valid_ppl_largest"] < history[39]["valid_ppl_largest"]

    # Recompute by hand with the stand-alone model: exp of the mean NLL over every predicted held-out token.
    ids = torch.from_numpy(late.ids)
    model = DecoderLM(space, largest)
    model.load_state_dict(extract_subnet(late.net, largest))
    nats, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, space.seq_len):
            chunk = ids[start : start + space.seq_len + 1]
            logits = model(chunk[None, :-1])
            nats += float(F.cross_entropy(logits[0], chunk[1:], reduction="sum"))
            count += len(chunk) - 1
    assert count == 1000
    assert ppl_late == pytest.approx(math.exp(nats / count), rel=1e-5)

    calls: list[str] = []
    late.net.forward = lambda *a, **k: calls.append("x")  # type: ignore[method-assign]
    assert late.perplexity(largest) == ppl_late and not calls  # cached per architecture


def test_baseline_trains_only_the_largest(space: SearchSpace, corpus: Corpus, tmp_path: Path) -> None:
    path = train_baseline(space, corpus, tmp_path / "base", TrainConfig(steps=3, batch_size=4), cache_dir=tmp_path)
    ev = PerplexityEvaluator(path, corpus.valid_text, max_tokens=200)
    assert ev.kind == "baseline" and math.isfinite(ev.perplexity(space.largest()))
    with pytest.raises(SpecError, match="baseline"):
        ev.perplexity(space.smallest())


def test_unreadable_checkpoint_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(DataError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(DataError, match="fewer than one batch"):
        train_supernet(
            space_from_dict(TINY),
            Corpus("a few words\n", "more words\n", "tiny"),
            tmp_path / "x",
            TrainConfig(steps=1),
            cache_dir=tmp_path,
        )


def test_cpu_preset_keeps_the_paper_space_shape() -> None:
    cpu, paper = load_space("cpu"), load_space("paper")
    assert cpu.layers == paper.layers
    assert len(cpu.heads) == len(paper.heads) == 5 and len(cpu.d_model) == len(paper.d_model) == 5
    assert max(cpu.d_ff) == 4 * max(cpu.d_model)
