"""NAS corpora: the shipped default, WikiText-2 folders, plain files, errors; the cached BPE tokenizer; line streams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tstack.errors import DataError, TstackError
from tstack.nas import data as nas_data
from tstack.nas.data import Corpus, encode_lines, load_corpus, paragraphs, train_tokenizer, windows


def test_default_corpus_holds_out_the_end_of_persuasion() -> None:
    corpus = load_corpus(None)
    assert "persuasion" in corpus.source and "five-novels" in corpus.source
    persuasion = paragraphs(nas_data.default_corpus_path().read_text(encoding="utf-8"))
    five = paragraphs(nas_data.default_corpus_path(nas_data.DEFAULT_EXTRA_TRAIN).read_text(encoding="utf-8"))
    assert corpus.valid_text.splitlines()[-1] == persuasion[-1]  # the held-out part is the book's end
    assert corpus.train_text.splitlines()[0] == five[0] == "SENSE AND SENSIBILITY"
    train_lines = corpus.train_text.splitlines()
    assert train_lines[len(five)] == persuasion[0]  # then Persuasion's beginning
    n_valid = len(corpus.valid_text.splitlines())
    assert train_lines[len(five) :] + corpus.valid_text.splitlines() == persuasion
    share = sum(len(p) + 1 for p in persuasion[-n_valid:]) / sum(len(p) + 1 for p in persuasion)
    assert 0.09 < share < 0.11
    assert load_corpus(None) == corpus  # deterministic


def test_plain_file_is_split_at_a_paragraph_boundary(tmp_path: Path) -> None:
    paras = [f"Paragraph {i} first line\nand its second line." for i in range(10)]
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    corpus = load_corpus(path, valid_fraction=0.2)
    # Paragraphs are reflowed to one line each, as WikiText holds them.
    assert corpus.train_text.splitlines()[0] == "Paragraph 0 first line and its second line."
    assert corpus.valid_text.splitlines() == [f"Paragraph {i} first line and its second line." for i in (8, 9)]
    assert len(corpus.train_text.splitlines()) == 8


def test_file_without_blank_lines_splits_by_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"sentence number {i}\n" for i in range(20)), encoding="utf-8")
    corpus = load_corpus(path, valid_fraction=0.1)
    assert corpus.valid_text.splitlines() == ["sentence number 18", "sentence number 19"]


@pytest.mark.parametrize(
    ("sub", "train", "valid"),
    [
        ("wikitext-2-raw", "wiki.train.raw", "wiki.valid.raw"),
        ("", "wiki.train.raw", "wiki.valid.raw"),
        ("wikitext-2-raw-v1", "train.txt", "validation.txt"),
        ("", "wiki.train.tokens", "wiki.valid.tokens"),
    ],
)
def test_wikitext_layouts_use_their_own_splits(tmp_path: Path, sub: str, train: str, valid: str) -> None:
    folder = tmp_path / sub if sub else tmp_path
    folder.mkdir(exist_ok=True)
    train_text = " \n = Valkyria Chronicles III = \n \n Senjō no Valkyria 3 is a game .\n"
    valid_text = " \n = Homarus gammarus = \n \n Homarus gammarus is a lobster .\n"
    (folder / train).write_text(train_text, encoding="utf-8")
    (folder / valid).write_text(valid_text, encoding="utf-8")
    (folder / "wiki.test.raw").write_text("never read\n", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert corpus.train_text == train_text
    assert corpus.valid_text == valid_text
    assert train in corpus.source


def test_errors_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_corpus(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="no text"):
        load_corpus(empty)
    one = tmp_path / "one.txt"
    one.write_text("just one line\n", encoding="utf-8")
    with pytest.raises(DataError, match="nothing can be held out"):
        load_corpus(one)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00abc\n\nxyz\n")
    with pytest.raises(DataError, match="not UTF-8"):
        load_corpus(binary)
    with pytest.raises(DataError, match="valid_fraction"):
        load_corpus(None, valid_fraction=1.0)
    folder = tmp_path / "wt"
    folder.mkdir()
    (folder / "wiki.train.raw").write_text("some text\n", encoding="utf-8")
    with pytest.raises(DataError, match="no valid split"):
        load_corpus(folder)
    (folder / "wiki.valid.raw").write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="no non-empty line"):
        load_corpus(folder)
    assert issubclass(DataError, TstackError)


def _small_corpus() -> Corpus:
    full = load_corpus(None)
    return Corpus(full.train_text[:30_000], full.valid_text[:5_000], "persuasion excerpt")


def test_tokenizer_is_cached_and_roundtrips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = _small_corpus()
    tok = train_tokenizer(corpus, 400, tmp_path)
    cached = list(tmp_path.glob("tokenizer-*.json"))
    assert len(cached) == 1 and "-v400" in cached[0].name
    assert tok.get_vocab_size() <= 400
    line = corpus.valid_text.splitlines()[0]
    assert tok.decode(tok.encode(line).ids) == line  # byte-level: lossless

    import tokenizers

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained again despite the cache")

    monkeypatch.setattr(tokenizers.trainers, "BpeTrainer", no_training)
    again = train_tokenizer(corpus, 400, tmp_path)
    assert again.to_str() == tok.to_str()
    with pytest.raises(AssertionError):  # another vocabulary size is another cache entry
        train_tokenizer(corpus, 300, tmp_path)


def test_tokenizer_rejects_a_vocabulary_below_the_byte_alphabet(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least 257"):
        train_tokenizer(_small_corpus(), 100, tmp_path)


def test_encoding_skips_empty_lines_and_windows_predict_each_token_once(tmp_path: Path) -> None:
    tok = train_tokenizer(_small_corpus(), 300, tmp_path)
    with_blanks = encode_lines(tok, "Anne was here.\n\n   \nShe smiled.\n \n")
    assert np.array_equal(with_blanks, encode_lines(tok, "Anne was here.\nShe smiled.\n"))
    ids = np.arange(23, dtype=np.int64)
    spans = windows(ids, 5, keep_tail=True)
    predicted = [t for s, n in spans for t in ids[s + 1 : s + n + 1]]
    assert predicted == list(range(1, 23))
    assert windows(ids, 5, keep_tail=False) == [(0, 5), (5, 5), (10, 5), (15, 5)]
