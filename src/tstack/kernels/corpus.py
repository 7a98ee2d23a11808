"""Sentences from a plain-text corpus for calibration and evaluation (default: data/austen-persuasion.txt)."""

from __future__ import annotations

import re
from pathlib import Path

from tstack.errors import TstackError
from tstack.fileio import read_text

DEFAULT_CORPUS = "austen-persuasion.txt"
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]*[A-Z])")


class CorpusError(TstackError):
    """A text corpus is missing, unreadable or too small."""


def default_corpus_path() -> Path:
    """austen-persuasion.txt: in the installed package's data/ (the wheel ships it) or data/ of a source checkout."""
    here = Path(__file__).resolve()
    candidates = [here.parents[1] / "data" / DEFAULT_CORPUS, here.parents[3] / "data" / DEFAULT_CORPUS]
    for path in candidates:
        if path.is_file():
            return path
    raise CorpusError(
        f"the default corpus {DEFAULT_CORPUS} is not here ({candidates[-1]}); pass a text file with --calib"
    )


def split_sentences(text: str, *, min_words: int = 5, max_words: int = 40) -> list[str]:
    """Paragraphs (blank-line separated) joined, split at sentence ends; keeps sentences of min..max words, in order."""
    out = []
    for para in re.split(r"\n\s*\n", text):
        flat = " ".join(para.split())
        if not flat:
            continue
        for sent in _SENTENCE_END.split(flat):
            words = sent.split()
            if min_words <= len(words) <= max_words:
                out.append(" ".join(words))
    return out


def load_sentences(path: str | Path | None = None, *, min_words: int = 5, max_words: int = 40) -> list[str]:
    """The sentences of a UTF-8 text file (the default corpus when None)."""
    p = default_corpus_path() if path is None else Path(path)
    text = read_text(p, "text", error=CorpusError)
    sentences = split_sentences(text, min_words=min_words, max_words=max_words)
    if not sentences:
        raise CorpusError(f"{p} holds no sentence of {min_words}..{max_words} words; give it running English prose")
    return sentences
