"""The scale benchmark's test corpora: K copies of the novels, a quarter of each copy's words redrawn."""
from __future__ import annotations

from bench import corpus_scale
from training.corpus import RawCorpus


def test_copies_with_a_quarter_of_the_words_redrawn(tmp_path, monkeypatch):
    paragraphs = [" ".join(f"w{i % 50}" for i in range(start, start + 40)) for start in range(0, 4000, 40)]
    monkeypatch.setattr(corpus_scale, "load_austen", lambda data_dir: RawCorpus("austen", paragraphs, []))
    path = corpus_scale.build_corpus(tmp_path / "x3.txt", 3, tmp_path)
    written = [p for p in path.read_text(encoding="utf-8").split("\n\n") if p]
    assert len(written) == 3 * len(paragraphs)
    original = " ".join(paragraphs).split()
    for copy in range(3):
        words = " ".join(written[copy * 100 : (copy + 1) * 100]).split()
        assert len(words) == len(original)
        changed = sum(a != b for a, b in zip(words, original)) / len(words)
        assert 0.15 < changed < 0.3  # a quarter redrawn, some by the same word
    assert corpus_scale.build_corpus(path, 5, tmp_path) == path  # built once
