"""Validation perplexity of sub-networks of a trained supernet (or of the stand-alone baseline), really measured.

Perplexity = exp(mean token NLL in nats) over the held-out text's non-empty lines (the paper's "excluding empty
strings"), tokenized with the checkpoint's own tokenizer, concatenated and cut into windows of the training
sequence length; each window starts with an empty context, and every token after the first is predicted once.

Speed: the cost is linear in the held-out tokens, so they are capped at `max_tokens` (default 16,384). The default
corpus holds out 12,928 tokens, all evaluated: 0.3 s for the smallest and 1.3 s for the largest `cpu` sub-network
with 2 threads (benchmarks/RESULTS-nas-train.md). Fewer tokens trade speed for noise: the standard error of the
log-perplexity is about the spread of token NLLs (2.2 nats for the `cpu` supernet) over sqrt(tokens). The first
`max_tokens` tokens are used, so every architecture sees the same text. Results are cached per architecture.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tstack.errors import DataError, SpecError
from tstack.nas.data import Corpus, encode_lines, tokenizer_from_json
from tstack.nas.space import Architecture, SearchSpace, space_from_dict
from tstack.nas.supernet import SuperNet
from tstack.nas.train import TrainConfig, load_checkpoint, mean_nll, torch_threads

DEFAULT_MAX_TOKENS = 16_384


class PerplexityEvaluator:
    """Held-out perplexity of any architecture of a supernet checkpoint (only the largest for a baseline)."""

    def __init__(
        self,
        checkpoint: Path,
        corpus: Corpus | str | NDArray[np.int64],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        threads: int | None = None,
        batch_size: int = 16,
    ) -> None:
        """`corpus`: a `Corpus` (its held-out text is used), held-out text itself, or token ids of it."""
        if max_tokens < 1:
            raise SpecError(f"max_tokens must be at least 1, got {max_tokens}")
        ckpt = load_checkpoint(Path(checkpoint))
        self.checkpoint = Path(checkpoint)
        self.kind: str = ckpt["kind"]
        self.space: SearchSpace = space_from_dict(ckpt["space"])
        self.config = TrainConfig.from_dict(ckpt["config"])
        self.step: int = int(ckpt["step"])
        self.total_steps: int = int(ckpt["total_steps"])
        self.seq_len = self.config.seq_len or self.space.seq_len
        self.threads = threads
        self.batch_size = batch_size
        self.tokenizer = tokenizer_from_json(ckpt["tokenizer"])
        if isinstance(corpus, Corpus | str):
            text = corpus.valid_text if isinstance(corpus, Corpus) else corpus
            ids = encode_lines(self.tokenizer, text)
        else:
            ids = np.asarray(corpus, dtype=np.int64)
        if len(ids) < 2:
            raise DataError("the held-out text has fewer than two tokens; give a corpus with held-out text")
        if ids.max() >= self.space.vocab_size or ids.min() < 0:
            raise DataError(
                f"token ids must lie in [0, {self.space.vocab_size}); encode with the checkpoint's tokenizer"
            )
        self.ids = ids[: max_tokens + 1]
        self.net = SuperNet(self.space)
        self.net.load_state_dict(ckpt["model"])
        self.net.eval()
        self._cache: dict[str, float] = {}
        self.n_tokens = len(self.ids) - 1

    def nll(self, arch: Architecture) -> float:
        """Mean token negative log-likelihood in nats of `arch` on the held-out tokens (cached)."""
        self.space.check(arch)
        if self.kind == "baseline" and arch != self.space.largest():
            raise SpecError(
                f"{self.checkpoint} is a stand-alone baseline of {self.space.largest().key}; only that "
                f"architecture has trained weights, not {arch.key}"
            )
        if arch.key not in self._cache:
            with torch_threads(self.threads):
                nats, _ = mean_nll(self.net, arch, self.ids, self.seq_len, self.batch_size)
            self._cache[arch.key] = nats
        return self._cache[arch.key]

    def perplexity(self, arch: Architecture) -> float:
        """exp(mean token NLL) of `arch` on the held-out text (lower is better)."""
        return math.exp(self.nll(arch))

    def __repr__(self) -> str:
        return f"PerplexityEvaluator({self.kind} at step {self.step}/{self.total_steps}, {self.n_tokens} tokens)"
