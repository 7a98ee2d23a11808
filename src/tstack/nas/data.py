"""Text for NAS training and evaluation: a corpus split into train and held-out text, a local BPE tokenizer, and
token streams of non-empty lines.

Corpora (`load_corpus`):

- ``None``: the public-domain novels shipped in ``data/`` (Jane Austen; see data/PROVENANCE.md): five novels
  (``austen-five-novels.txt``, 3.6 MB) and the first part of *Persuasion* train, and the last ``valid_fraction`` of
  *Persuasion* (``austen-persuasion.txt``, the end of a novel not otherwise seen) is held out.
- a directory in the WikiText-2 layout (the paper's data set, §6.4): ``wiki.train.raw`` / ``wiki.valid.raw`` (also
  ``.tokens``, ``train.txt`` / ``valid.txt`` / ``validation.txt``), directly or in a ``wikitext-2-raw``
  (``-v1``) subfolder; the train and valid splits are used as they are (the test split is never read).
- any UTF-8 plain-text file: paragraphs (blocks separated by blank lines; every line when there is no blank line)
  are reflowed to one line each, as WikiText holds one paragraph per line, and the last ``valid_fraction`` of the
  characters, cut at the nearest paragraph boundary, is held out. The cut is deterministic: no sampling.

Perplexity "excluding empty lines" (the paper's metric): `encode_lines` tokenizes only non-empty lines, each with
its newline, and concatenates them into one stream that `windows` cuts into sequences of seq_len tokens.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from tstack.errors import DataError
from tstack.fileio import temp_path

if TYPE_CHECKING:  # tokenizers is an optional dependency (the nas extra): imported where it is used
    from tokenizers import Tokenizer

DEFAULT_CORPUS = "austen-persuasion.txt"  # split into train and held-out text
DEFAULT_EXTRA_TRAIN = "austen-five-novels.txt"  # training text only
# Bump when the tokenizer recipe changes, so cached tokenizers of the old recipe are not reused.
TOKENIZER_RECIPE = "bytebpe-1"
END_OF_TEXT = "<|endoftext|>"

_SPLIT_NAMES = {
    "train": ("wiki.train.raw", "wiki.train.tokens", "train.txt", "train.raw"),
    "valid": ("wiki.valid.raw", "wiki.valid.tokens", "valid.txt", "validation.txt", "valid.raw"),
}
_SUBFOLDERS = ("", "wikitext-2-raw", "wikitext-2-raw-v1", "wikitext-2", "wikitext-2-v1")


@dataclass(frozen=True, slots=True)
class Corpus:
    """Training text and held-out text (one paragraph per line), plus where they came from."""

    train_text: str
    valid_text: str
    source: str

    @property
    def train_sha256(self) -> str:
        return hashlib.sha256(self.train_text.encode("utf-8")).hexdigest()

    @property
    def valid_sha256(self) -> str:
        return hashlib.sha256(self.valid_text.encode("utf-8")).hexdigest()

    def describe(self) -> dict[str, str | int]:
        """Identity of the corpus for checkpoints and reports (hashes, not the text)."""
        return {
            "source": self.source,
            "train_sha256": self.train_sha256,
            "valid_sha256": self.valid_sha256,
            "train_chars": len(self.train_text),
            "valid_chars": len(self.valid_text),
        }


def data_dir_candidates() -> list[Path]:
    """Where shipped data may live: inside the package (if a wheel bundles it) or data/ of a source checkout."""
    package_root = Path(__file__).resolve().parents[1]
    return [package_root / "data", package_root.parents[1] / "data"]


def default_corpus_path(name: str = DEFAULT_CORPUS) -> Path:
    """A shipped corpus file; the wheel carries only src/tstack, so an installed package needs a path."""
    for folder in data_dir_candidates():
        path = folder / name
        if path.is_file():
            return path
    raise DataError(
        f"the default corpus file {name} is not shipped with this installation; pass a text file or a "
        "WikiText-2 folder as the corpus"
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; convert it (e.g. iconv -t utf-8) and pass it again") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}; check the path and its permissions") from None


def paragraphs(text: str) -> list[str]:
    """Blank-line-separated blocks reflowed to single lines; every non-empty line when no blank line exists."""
    lines = text.splitlines()
    has_blank = any(not line.strip() for line in lines) and any(line.strip() for line in lines)
    blocks = re.split(r"\n[ \t]*\n", text) if has_blank else lines
    return [flat for flat in (" ".join(block.split()) for block in blocks) if flat]


def split_text(text: str, valid_fraction: float, source: str) -> Corpus:
    """Hold out the last `valid_fraction` of the characters, cut at the nearest paragraph boundary."""
    paras = paragraphs(text)
    if not paras:
        raise DataError(f"corpus {source} holds no text; give a file with running prose")
    if len(paras) < 2:
        raise DataError(f"corpus {source} has a single paragraph, so nothing can be held out; give more text")
    starts = np.concatenate([[0], np.cumsum([len(p) + 1 for p in paras])])
    # The paragraph boundary nearest to the wanted share, keeping at least one paragraph on each side.
    cut = int(np.argmin(np.abs(starts - starts[-1] * (1.0 - valid_fraction))))
    cut = min(max(cut, 1), len(paras) - 1)
    return Corpus("\n".join(paras[:cut]) + "\n", "\n".join(paras[cut:]) + "\n", source)


def _find_split(folder: Path, split: str) -> Path | None:
    for sub in _SUBFOLDERS:
        for name in _SPLIT_NAMES[split]:
            path = folder / sub / name if sub else folder / name
            if path.is_file():
                return path
    return None


def load_corpus(path: Path | str | None = None, valid_fraction: float = 0.1) -> Corpus:
    """A corpus from the shipped default (None), a WikiText-2 folder, or a plain-text file (see module docstring)."""
    if not 0.0 < valid_fraction < 1.0:
        raise DataError(f"valid_fraction must lie strictly between 0 and 1, got {valid_fraction}")
    if path is None:
        file, extra = default_corpus_path(), default_corpus_path(DEFAULT_EXTRA_TRAIN)
        split = split_text(_read(file), valid_fraction, file.name)
        extra_text = "\n".join(paragraphs(_read(extra))) + "\n"
        source = f"{extra.name} + {file.name} (shipped; last {valid_fraction:.0%} of {file.name} held out)"
        return Corpus(extra_text + split.train_text, split.valid_text, source)
    p = Path(path)
    if p.is_dir():
        train, valid = _find_split(p, "train"), _find_split(p, "valid")
        if train is None or valid is None:
            missing = "train" if train is None else "valid"
            raise DataError(
                f"{p} has no {missing} split; a corpus folder needs wiki.train.raw and wiki.valid.raw "
                "(or train.txt and valid.txt), directly or in wikitext-2-raw/"
            )
        train_text, valid_text = _read(train), _read(valid)
        if not train_text.strip():
            raise DataError(f"training split {train} is empty; give a non-empty file")
        if not valid_text.strip():
            raise DataError(f"held-out split {valid} has no non-empty line; give a non-empty file")
        return Corpus(train_text, valid_text, f"{p.name} ({train.name} / {valid.name})")
    if not p.exists():
        raise DataError(f"corpus {p} does not exist; give a text file, a WikiText-2 folder, or no path for the default")
    return split_text(_read(p), valid_fraction, f"{p.name} (last {valid_fraction:.0%} held out)")


def non_empty_lines(text: str) -> list[str]:
    """Lines that hold more than white space: the paper's perplexity excludes empty lines."""
    return [line for line in text.splitlines() if line.strip()]


# -- tokenizer -----------------------------------------------------------------------------------------------------


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` that replaces `path` when the block ends without error.

    Created with a plain open (not mkstemp), so the file gets the user's umask like any other output.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)  # named so that a later run can tell it is orphaned (see `tstack.fileio.clean_stale_temp`)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def tokenizer_cache_path(corpus: Corpus, vocab_size: int, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"tokenizer-{TOKENIZER_RECIPE}-{corpus.train_sha256[:16]}-v{vocab_size}.json"


def train_tokenizer(corpus: Corpus, vocab_size: int, cache_dir: Path) -> Tokenizer:
    """Byte-level BPE (GPT-2 style) of at most `vocab_size` ids, trained on the training text only.

    Cached as JSON in `cache_dir`, keyed by (recipe, training-text hash, vocab_size); training is deterministic, so a
    cache miss rebuilds the same tokenizer. On a small corpus fewer merges than asked may exist; ids stay below
    `vocab_size` either way.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + 1:
        raise DataError(f"vocab_size {vocab_size} is too small for byte-level BPE; use at least {len(alphabet) + 1}")
    path = tokenizer_cache_path(corpus, vocab_size, cache_dir)
    if path.is_file():
        try:
            return Tokenizer.from_file(str(path))
        except Exception:  # a corrupt cache entry is rebuilt, not fatal
            path.unlink(missing_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        initial_alphabet=alphabet,
        special_tokens=[END_OF_TEXT],
        show_progress=False,
    )
    tokenizer.train_from_iterator(non_empty_lines(corpus.train_text), trainer)
    _atomic_write_text(path, tokenizer.to_str())
    return tokenizer


def tokenizer_from_json(text: str) -> Tokenizer:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(text)


def encode_lines(tokenizer: Tokenizer, text: str) -> NDArray[np.int64]:
    """Token ids of the non-empty lines of `text`, each with its newline, concatenated into one stream."""
    lines = [line + "\n" for line in non_empty_lines(text)]
    if not lines:
        return np.zeros(0, dtype=np.int64)
    encodings = tokenizer.encode_batch(lines, add_special_tokens=False)
    return np.fromiter((i for enc in encodings for i in enc.ids), dtype=np.int64)


def windows(ids: NDArray[np.int64], seq_len: int, *, keep_tail: bool) -> list[tuple[int, int]]:
    """(start, length) of consecutive windows of `seq_len` predicted tokens over a stream.

    Window k reads ids[start : start + length + 1]: inputs are its first `length` ids and targets its last `length`,
    so every id after the first is predicted exactly once. `keep_tail` keeps a final shorter window (evaluation);
    training drops it so that every batch has the same shape.
    """
    n_targets = len(ids) - 1
    out = [(s, seq_len) for s in range(0, n_targets - seq_len + 1, seq_len)]
    done = len(out) * seq_len
    if keep_tail and n_targets - done > 0:
        out.append((done, n_targets - done))
    return out
