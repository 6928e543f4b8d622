"""Tokenization (offline NLTK) and the vocabulary."""
from __future__ import annotations

import subprocess
import sys

import pytest

from nltk.tokenize import NLTKWordTokenizer

from models.text import TRUSTED_TEXT_WORD_TOKENIZER, detokenize, split_sentences, tokenize_text, tokenize_words
from models.vocabulary import SENTENCE_END, SENTENCE_START, SPECIAL_TOKENS, UNKNOWN_TOKEN, Vocabulary


def test_punkt_knows_english_abbreviations():
    text = "Mr. Darcy bowed. Mrs. Bennet was delighted! Was she? Yes."
    assert split_sentences(text) == ["Mr. Darcy bowed.", "Mrs. Bennet was delighted!", "Was she?", "Yes."]


def test_words_are_lowercased_treebank_tokens():
    assert tokenize_words("It isn't Emma's fault, said Mr. Knightley.") == [
        "it", "is", "n't", "emma", "'s", "fault", ",", "said", "mr.", "knightley", ".",
    ]


def test_the_trusted_text_tokenizer_gives_nltks_tokens_without_the_time_limit():
    guarded = NLTKWordTokenizer()
    texts = [
        "It isn't Emma's fault, said Mr. Knightley.", '"I cannot," she said -- and (no!) [yes] {maybe} <b>.',
        "\u201cQuoted,\u201d she said; \u2018single\u2019 \u00abguillemets\u00bb \u2014 dashes\u2013here... 3.88 $5 50% #1 @x",
        "They'll've gone, y'know; we'd, you're, I'm, cannot, gonna, wanna, 'tis, 'twas, d'ye, more'n.",
        "``Double backticks'' and 'single quotes' end here.' And ``''\" odd\"'' ones.",
        "Tabs\tand\n newlines   and spaces: a:b, 1,000; c: end:", "...", "", "   ",
    ]
    for text in texts:
        for parentheses in (False, True):
            assert TRUSTED_TEXT_WORD_TOKENIZER.tokenize(text, parentheses) == guarded.tokenize(text, parentheses), text
    rules = [*TRUSTED_TEXT_WORD_TOKENIZER.STARTING_QUOTES, *TRUSTED_TEXT_WORD_TOKENIZER.PUNCTUATION,
             *TRUSTED_TEXT_WORD_TOKENIZER.ENDING_QUOTES, TRUSTED_TEXT_WORD_TOKENIZER.PARENS_BRACKETS]
    assert all(not hasattr(pattern, "_timeout") for pattern, _ in rules)  # the wrapper is off


def test_tokenize_text_drops_empty_sentences():
    assert tokenize_text("  ") == []
    assert tokenize_text("One. Two.") == [["one", "."], ["two", "."]]


def test_detokenize_reads_naturally():
    assert detokenize(["she", "did", "n't", "know", ",", "did", "she", "?"]) == "She didn't know, did she?"


def test_no_nltk_data_needed():
    """Tokenizing works with NLTK's data path empty and nltk.download disabled."""
    code = (
        "import nltk\n"
        "def refuse(*a, **k): raise SystemExit('nltk.download was called')\n"
        "nltk.download = refuse\n"
        "from models.text import tokenize_text\n"
        "print(tokenize_text('Mr. Smith came. He left.'))\n"
    )
    env = {"NLTK_DATA": "/nonexistent", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "['mr.', 'smith', 'came', '.']" in result.stdout


def test_vocabulary_keeps_most_frequent_with_alphabetical_ties():
    sentences = [["b", "a", "c", "c"], ["d", "a", "b", "e"]]
    vocab = Vocabulary.build(sentences, size=6)
    assert vocab.words == [UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END, "a", "b", "c"]
    assert vocab.counts[:3] == [2, 2, 2]  # d and e are unknown; two sentences
    assert vocab.encode(["a", "zzz", "c"]) == [3, 0, 5]
    assert vocab.encode_sentence(["c"]) == [1, 5, 2]
    assert vocab.decode([3, 4]) == ["a", "b"]


def test_vocabulary_size_counts_the_special_tokens():
    sentences = [[f"w{i}" for i in range(100)]]
    assert len(Vocabulary.build(sentences, size=50)) == 50


def test_vocabulary_smaller_than_corpus_words():
    vocab = Vocabulary.build([["x", "y"]], size=100)
    assert vocab.words == [*SPECIAL_TOKENS, "x", "y"]


def test_vocabulary_rejects_bad_input():
    with pytest.raises(ValueError):
        Vocabulary.build([["a"]], size=3)
    with pytest.raises(ValueError):
        Vocabulary(["a", "b", "c"])
    with pytest.raises(ValueError):
        Vocabulary([*SPECIAL_TOKENS, "a", "a"])
