"""Training corpora: every bad file is one line naming it (exit code 1, no traceback); CSV is
read as the csv module documents; control characters go; overlong sentences are cut."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from models.text import tokenize_paragraphs
from training import corpus as corpus_module
from training.corpus import CorpusError, RawCorpus, read_paragraphs
from training.dataset import build_dataset, split_long
from tests.toy_corpus import write_toy_corpus

REPO = Path(__file__).resolve().parent.parent
QUICK = ["--vocab-size", "40", "--hidden", "8", "--epochs", "1", "--ngram-order", "0", "--progress-seconds", "0"]


def train(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "training/train.py", *QUICK, "--out", str(tmp_path / "m.joblib"), *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def bad_corpus(tmp_path: Path, case: str) -> tuple[list[str], Path, str]:
    """Flags naming a bad file, the file the message must name, and the problem it must state."""
    toy = write_toy_corpus(tmp_path / "toy.txt")
    if case == "missing":
        return ["--corpus", str(tmp_path / "absent.txt")], tmp_path / "absent.txt", "no such file"
    path = tmp_path / {"wide_cell": "wide.csv", "header_only": "header.csv"}.get(case, f"{case}.txt")
    if case == "empty":
        path.write_text("\n \n\n")
    elif case == "header_only":
        path.write_text("body\n")
    elif case == "one_sentence":
        path.write_text("Only one sentence here.\n")
        return ["--corpus", str(path)], path, "1 sentence of text; at least 2 are needed"
    elif case == "not_utf8":
        path.write_bytes(b"caf\xe9 society.\n")
        return ["--corpus", str(path)], path, "not UTF-8 text"
    elif case == "wide_cell":
        path.write_text('text\n"' + "word " * (corpus_module.MAX_CSV_CELL_CHARS // 5 + 1) + '"\n')
        return ["--corpus", str(path)], path, f"line 2: a cell is longer than {corpus_module.MAX_CSV_CELL_CHARS:,} characters"
    elif case == "empty_validation":
        path.write_text("")
        return ["--corpus", str(toy), "--validation", str(path)], path, "holds no text"
    return ["--corpus", str(path)], path, "holds no text"


@pytest.mark.parametrize("case", ["missing", "empty", "header_only", "one_sentence", "not_utf8", "wide_cell",
                                  "empty_validation"])
def test_a_bad_corpus_is_one_line_naming_the_file(tmp_path, case):
    flags, path, problem = bad_corpus(tmp_path, case)
    done = train(tmp_path, *flags)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"train.py: {path}: {problem}") and len(done.stderr.splitlines()) == 1, done.stderr
    assert not (tmp_path / "m.joblib").exists()


def test_csv_cells_keep_their_line_breaks_and_may_be_long(tmp_path):
    path = tmp_path / "cells.csv"
    long_cell = "long " * 40_000  # 200,000 characters: over the csv module's own limit of 131,072
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["text"], ["first cell\nsecond line"], ["crlf\r\ninside"], [long_cell]])
    limit_before = csv.field_size_limit()
    paragraphs = read_paragraphs(path)
    assert paragraphs[:2] == ["first cell second line", "crlf inside"]  # never "cellsecond"
    assert paragraphs[2] == long_cell.strip()
    assert csv.field_size_limit() == limit_before  # the process-wide limit is put back


def test_a_malformed_csv_names_the_line(tmp_path, monkeypatch):
    path = tmp_path / "wide.csv"
    path.write_text('text\nshort\n"' + "x" * 2000 + '"\n')
    monkeypatch.setattr(corpus_module, "MAX_CSV_CELL_CHARS", 1000)
    with pytest.raises(CorpusError, match=rf"^{path}: line 3: a cell is longer than 1,000 characters$"):
        read_paragraphs(path)


def test_control_characters_are_removed_and_never_join_words(tmp_path):
    txt = tmp_path / "c.txt"
    txt.write_text("Nul\x00led words\x1b here,\x0cthen\x1fmore\x7f and\x85 C1.\n\nNext\x07 one.\n")
    paragraphs = read_paragraphs(txt)
    assert paragraphs == ["Nulled words here, then more and C1.", "Next one."]
    words = [w for s in tokenize_paragraphs(paragraphs) for w in s]
    assert not any(ch < " " or "\x7f" <= ch <= "\x9f" for w in words for ch in w)
    cells = tmp_path / "c.csv"
    cells.write_text('text\n"a\x00b\x0bc"\n')
    assert read_paragraphs(cells) == ["ab c"]


def test_split_long_cuts_into_pieces_and_counts():
    sentences = [list("abc"), list("abcdefg"), list("ab")]
    pieces, cut = split_long(sentences, 3)
    assert pieces == [list("abc"), list("abc"), list("def"), list("g"), list("ab")] and cut == 1
    assert split_long(sentences, None) == (sentences, 0)


def test_a_one_line_document_is_cut_and_counted_in_the_progress_output(tmp_path):
    corpus = write_toy_corpus(tmp_path / "toy.txt")
    with open(corpus, "a", encoding="utf-8") as handle:  # one paragraph of 1,000 words, no full stop
        handle.write("\n" + " ".join(["the cat saw the garden"] * 200) + "\n")
    done = train(tmp_path, "--corpus", str(corpus), "--max-sentence-words", "60")
    assert done.returncode == 0, done.stderr
    assert "; 1 sentences over 60 words cut" in done.stderr

    dataset = build_dataset(RawCorpus("toy", read_paragraphs(corpus), []), 40, max_sentence_words=60)
    assert max(len(s) for s in [*dataset.train, *dataset.valid]) == 60 + 2  # with SENTENCE_START and _END
    uncut = build_dataset(RawCorpus("toy", read_paragraphs(corpus), []), 40)
    assert max(len(s) for s in [*uncut.train, *uncut.valid]) == 1000 + 2
