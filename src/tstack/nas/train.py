"""Supernet training with the BigNAS sandwich rule, and stand-alone training of the largest model (the baseline).

One step of `train_supernet` runs the same batch through four sub-networks, the largest, the smallest and two
drawn uniformly from the space (digest §6.4, §9.3), backpropagates each loss divided by four, so the accumulated
gradient is the average of the four gradients, and takes one optimizer step. No in-place distillation (the paper
mentions none). `train_baseline` trains only the largest architecture with the same hyperparameters.

Optimiser: Adam (AdamW with weight_decay = 0 is exactly Adam; decay, when asked, applies to matrices only), a
linear learning-rate schedule (optional linear warm-up to the peak, then linear decay to zero at the last step).

Resumable and deterministic: all randomness is a pure function of (seed, step) (the batch order of epoch e comes
from a generator seeded with (seed, e), the random sub-networks of step s from one seeded with (seed, s)) and the
schedule is a function of the step, so a checkpoint needs only model, optimizer state and step. Checkpoints are
written every `checkpoint_interval_steps` and at the end, atomically; calling again with the same out_dir resumes
from the last one, and a resumed run ends with the same weights as an uninterrupted one (same thread count).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from numpy.typing import NDArray

from tstack.errors import DataError, SpecError
from tstack.fileio import clean_stale_temp
from tstack.nas.data import Corpus, atomic_path, encode_lines, train_tokenizer, windows
from tstack.nas.space import Architecture, SearchSpace
from tstack.nas.supernet import SuperNet

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train.json"
CHECKPOINT_FORMAT = "tstack-nas-checkpoint/1"
KINDS = ("supernet", "baseline")
EVAL_LOGITS_BUDGET = 32 * 2**20  # floats of logits per evaluation batch (128 MiB)

Progress = Callable[[int, int, float], None]

# Fields that do not change the trained weights: a run may be resumed with other values of these.
_RESUMABLE_FIELDS = frozenset({"checkpoint_interval_steps", "eval_interval_steps", "eval_max_tokens"})


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Hyperparameters of supernet and baseline training (both use the same, as in the paper).

    Give exactly one of `steps` or `epochs` (passes over the training windows, may be fractional). `seq_len` None
    takes the space's. `warmup_fraction` of the steps ramps the learning rate linearly from 0 to `lr_peak`; the
    rest decays it linearly to 0.
    """

    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 16
    lr_peak: float = 5e-5
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip_norm: float | None = None
    seq_len: int | None = None
    seed: int = 0
    random_subnets: int = 2
    checkpoint_interval_steps: int = 100
    eval_interval_steps: int = 0
    eval_max_tokens: int = 4096

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise SpecError("training config: give exactly one of steps or epochs")
        if self.steps is not None and self.steps <= 0:
            raise SpecError(f"training config: steps must be positive, got {self.steps}")
        if self.epochs is not None and not self.epochs > 0:
            raise SpecError(f"training config: epochs must be positive, got {self.epochs}")
        positive = {
            "batch_size": self.batch_size,
            "lr_peak": self.lr_peak,
            "checkpoint_interval_steps": self.checkpoint_interval_steps,
            "eval_max_tokens": self.eval_max_tokens,
        }
        for name, value in positive.items():
            if not value > 0:
                raise SpecError(f"training config: {name} must be positive, got {value}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise SpecError(f"training config: warmup_fraction must lie in [0, 1), got {self.warmup_fraction}")
        if self.weight_decay < 0 or self.random_subnets < 0 or self.eval_interval_steps < 0:
            raise SpecError("training config: weight_decay, random_subnets and eval_interval_steps must be >= 0")
        if self.seq_len is not None and self.seq_len <= 0:
            raise SpecError(f"training config: seq_len must be positive, got {self.seq_len}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise SpecError(f"training config: grad_clip_norm must be positive or None, got {self.grad_clip_norm}")

    @classmethod
    def paper(cls, **overrides: Any) -> TrainConfig:
        """The paper's setup (§6.4): Adam, linear schedule, 50 epochs, 512 tokens, batch 16.

        The peak LR is 5e-5, the largest of the paper's grid {5, 2, 1, 0.5}e-5: the models are trained from scratch,
        where the largest rate of such a small grid converges furthest in a fixed number of epochs. Warm-up, weight
        decay and clipping are not stated by the paper and are off.
        """
        return replace(cls(epochs=50.0, batch_size=16, lr_peak=5e-5, seq_len=512), **overrides)

    @classmethod
    def cpu(cls, **overrides: Any) -> TrainConfig:
        """The `cpu` space's setup: 600 sandwich steps, 6.8 minutes on 2 cores (benchmarks/RESULTS-nas-train.md).

        Differs from the paper in what a few minutes need: a fixed step count (0.55 epoch of the default corpus), a
        higher peak LR for models 60x smaller (2e-3; 4e-3 trained worse) with 5% warm-up, light weight decay and
        gradient clipping at 1.
        """
        base = cls(
            steps=600,
            batch_size=16,
            lr_peak=2e-3,
            warmup_fraction=0.05,
            weight_decay=0.01,
            grad_clip_norm=1.0,
            checkpoint_interval_steps=50,
        )
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def total_steps(self, n_windows: int) -> int:
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None
        return max(1, math.ceil(self.epochs * n_windows / self.batch_size))

    def lr_at(self, step: int, total: int) -> float:
        """Learning rate of 0-based step `step` of `total`: linear warm-up, then linear decay to 0."""
        warmup = int(self.warmup_fraction * total)
        if step < warmup:
            return self.lr_peak * (step + 1) / warmup
        return self.lr_peak * max(0.0, (total - step) / max(1, total - warmup))


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` intra-op threads (None: leave torch's setting), restoring the previous count after."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise SpecError(f"threads must be at least 1, got {threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_write_json(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by this module (weights only: no code runs on load)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise DataError(f"no checkpoint at {path}; train first (tstack nas train) or give the checkpoint's path")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(
            f"{path} is not a readable checkpoint ({type(exc).__name__}); retrain into a new out_dir"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path} is not a tstack NAS checkpoint of format {CHECKPOINT_FORMAT}; retrain it")
    return ckpt


def batch_tensor(ids: NDArray[np.int64], spans: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets [len(spans), length] of equal-length windows."""
    length = spans[0][1]
    rows = np.stack([ids[s : s + length + 1] for s, _ in spans])
    t = torch.from_numpy(rows)
    return t[:, :-1], t[:, 1:]


def mean_nll(
    net: SuperNet, arch: Architecture, ids: NDArray[np.int64], seq_len: int, batch_size: int = 16
) -> tuple[float, int]:
    """(mean token NLL in nats, number of predicted tokens) of `arch` over a token stream, windows of seq_len."""
    spans = windows(ids, seq_len, keep_tail=True)
    if not spans:
        raise DataError("the held-out text is shorter than two tokens; give a corpus with more held-out text")
    # Cap the logits held at once (rows x seq_len x vocab floats): 16 x 512 x 50257 would be 1.6 GB.
    batch_size = max(1, min(batch_size, EVAL_LOGITS_BUDGET // (seq_len * net.space.vocab_size)))
    total_nats, count = 0.0, 0
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            full = [s for s in spans if s[1] == seq_len]
            groups = [full[i : i + batch_size] for i in range(0, len(full), batch_size)]
            groups += [[s] for s in spans if s[1] != seq_len]
            for group in groups:
                x, y = batch_tensor(ids, group)
                logits = net(x, arch)
                total_nats += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
                count += y.numel()
    finally:
        net.train(was_training)
    return total_nats / count, count


def _identity(
    kind: str, space: SearchSpace, corpus: Corpus, config: TrainConfig, tokenizer_json: str
) -> dict[str, Any]:
    return {
        "kind": kind,
        "space": space.to_dict(),
        "config": {k: v for k, v in config.to_dict().items() if k not in _RESUMABLE_FIELDS},
        "train_sha256": corpus.train_sha256,
        "tokenizer_sha256": hashlib.sha256(tokenizer_json.encode("utf-8")).hexdigest(),
    }


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(prefix + key)
    return out


def _optimizer(net: SuperNet, config: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in net.parameters() if p.ndim >= 2]
    no_decay = [p for p in net.parameters() if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr_peak, betas=(config.beta1, config.beta2))


def accumulate_gradients(net: SuperNet, archs: list[Architecture], x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Backpropagate each architecture's mean token loss divided by len(archs); returns the undivided losses.

    The gradients accumulated in the parameters are then the average of the architectures' gradients (the
    sandwich rule); one backward per architecture keeps only one graph alive at a time.
    """
    losses = []
    for arch in archs:
        loss = F.cross_entropy(net(x, arch).flatten(0, 1), y.flatten())
        (loss / len(archs)).backward()  # type: ignore[no-untyped-call]
        losses.append(loss.item())
    return losses


def step_architectures(kind: str, space: SearchSpace, config: TrainConfig, step: int) -> list[Architecture]:
    """The sub-networks of 0-based step `step`: the sandwich for a supernet, the largest alone for the baseline."""
    if kind == "baseline":
        return [space.largest()]
    rng = np.random.default_rng([config.seed, 1, step])
    return [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(config.random_subnets))]


def step_batch(n_windows: int, config: TrainConfig, step: int) -> NDArray[np.int64]:
    """Window indices of 0-based step `step`: consecutive slots of per-epoch permutations seeded by (seed, epoch)."""
    slots = np.arange(step * config.batch_size, (step + 1) * config.batch_size)
    epochs = slots // n_windows
    out = np.empty(len(slots), dtype=np.int64)
    for epoch in np.unique(epochs):
        perm = np.random.default_rng([config.seed, 0, int(epoch)]).permutation(n_windows)
        mask = epochs == epoch
        out[mask] = perm[slots[mask] % n_windows]
    return out


def _train(
    kind: str,
    space: SearchSpace,
    corpus: Corpus,
    out_dir: Path,
    config: TrainConfig,
    progress: Progress | None,
    threads: int | None,
    cache_dir: Path | None,
) -> Path:
    out_dir = Path(out_dir)
    clean_stale_temp(out_dir)  # a killed run's half-written checkpoint (tens of MB) goes before a new one
    seq_len = config.seq_len or space.seq_len
    if seq_len > space.seq_len:
        raise SpecError(f"training seq_len {seq_len} exceeds the space's {space.seq_len} positions; lower it")
    with torch_threads(threads):
        tokenizer = train_tokenizer(corpus, space.vocab_size, cache_dir or out_dir)
        tokenizer_json = tokenizer.to_str()
        identity = _identity(kind, space, corpus, config, tokenizer_json)
        train_ids = encode_lines(tokenizer, corpus.train_text)
        spans = windows(train_ids, seq_len, keep_tail=False)
        if len(spans) < config.batch_size:
            raise DataError(
                f"the training text gives {len(spans)} windows of {seq_len} tokens, fewer than one batch of "
                f"{config.batch_size}; give more text or lower batch_size / seq_len"
            )
        valid_ids = encode_lines(tokenizer, corpus.valid_text)[: config.eval_max_tokens + 1]
        total = config.total_steps(len(spans))
        starts = np.array([s for s, _ in spans], dtype=np.int64)
        offsets = np.arange(seq_len + 1, dtype=np.int64)

        net = SuperNet(space, seed=config.seed)
        optimizer = _optimizer(net, config)
        step, elapsed_s, history = 0, 0.0, []
        path = out_dir / CHECKPOINT_NAME
        if path.is_file():
            ckpt = load_checkpoint(path)
            diff = _differences(ckpt["identity"], identity)
            if diff:
                raise DataError(
                    f"{out_dir} holds a checkpoint of another run (differs in {', '.join(diff[:4])}); "
                    "use a new out_dir or delete that one"
                )
            net.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            step, elapsed_s, history = int(ckpt["step"]), float(ckpt["elapsed_s"]), list(ckpt["history"])

        def save() -> None:
            ckpt = {
                "format": CHECKPOINT_FORMAT,
                "identity": identity,
                "kind": kind,
                "space": space.to_dict(),
                "config": config.to_dict(),
                "corpus": corpus.describe(),
                "tokenizer": tokenizer_json,
                "step": step,
                "total_steps": total,
                "elapsed_s": elapsed_s,
                "history": history,
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "torch_version": str(torch.__version__),
            }
            atomic_torch_save(ckpt, path)
            atomic_write_json(
                {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "tokenizer")}, out_dir / LOG_NAME
            )

        net.train()
        while step < total:
            started = time.perf_counter()
            lr = config.lr_at(step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            rows = torch.from_numpy(train_ids[starts[step_batch(len(spans), config, step)][:, None] + offsets])
            x, y = rows[:, :-1], rows[:, 1:]
            archs = step_architectures(kind, space, config, step)
            optimizer.zero_grad(set_to_none=True)
            losses = accumulate_gradients(net, archs, x, y)
            if config.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip_norm)
            optimizer.step()
            step += 1
            elapsed_s += time.perf_counter() - started
            mean_loss = sum(losses) / len(losses)
            record: dict[str, Any] = {"step": step, "lr": lr, "loss": mean_loss, "elapsed_s": round(elapsed_s, 3)}
            if kind == "supernet":
                record["loss_largest"], record["loss_smallest"] = losses[0], losses[1]
            if config.eval_interval_steps and (step % config.eval_interval_steps == 0 or step == total):
                watched = {"largest": space.largest()}
                if kind == "supernet":
                    watched["smallest"] = space.smallest()
                for name, arch in watched.items():
                    record[f"valid_ppl_{name}"] = math.exp(mean_nll(net, arch, valid_ids, seq_len)[0])
            history.append(record)
            if step % config.checkpoint_interval_steps == 0 or step == total:
                save()
            if progress is not None:
                progress(step, total, mean_loss)
    return path


def train_supernet(
    space: SearchSpace,
    corpus: Corpus,
    out_dir: Path,
    config: TrainConfig,
    *,
    progress: Progress | None = None,
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Train the weight-sharing supernet of `space` with the sandwich rule; returns the final checkpoint's path.

    `progress(step, total_steps, mean loss of the step's sub-networks)` is called after every optimizer step.
    `threads` sets torch's intra-op threads for the call. The tokenizer is cached in `cache_dir` (default out_dir).
    """
    return _train("supernet", space, corpus, out_dir, config, progress, threads, cache_dir)


def train_baseline(
    space: SearchSpace,
    corpus: Corpus,
    out_dir: Path,
    config: TrainConfig,
    *,
    progress: Progress | None = None,
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Train the largest architecture alone (the paper's stand-alone baseline); same hyperparameters and format."""
    return _train("baseline", space, corpus, out_dir, config, progress, threads, cache_dir)
