"""Readable text grown one word at a time, so each word can be sent as soon as it is chosen.

Each word is given the characters its arrival adds to the detokenized text (NLTK's Treebank
detokenizer, as for a finished sentence). Detokenizing costs about 30 regular-expression passes
per call whatever the length, which made it 40% of a request's CPU; so the common cases take a
short path: a word of letters after a word of letters or a closing punctuation mark (a space and
the word), a closing punctuation mark after a word of letters (the mark alone), and a sentence's
first word of letters (capitalised); any other word detokenizes the sentence again
(``tests/test_generation_stream.py`` checks both against detokenizing the whole sentence after
every word, on random sentences). The detokenizer very rarely re-spaces text already sent
(``a --`` becomes ``a--b`` once a word follows the dash); that word is then sent with a single
space before it, so the text assembled here, which is what the API returns, always equals the
words' texts joined.

The words are shown as the corpus writes them (``shown_sentence``): in their most frequent case
(``models.casing``, when the model file has it), the sentence's first word capitalised, and each
quotation mark turned the way it goes. The tokenizer writes a mark ``''`` whenever no space comes
before it, so the corpus has ``''`` opening a quotation after a dash, and a model draws it at a
sentence's start too; shown as a closing mark, the detokenizer spaces it as one (``" not
immediately!"``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from models.casing import cased_words
from models.text import detokenize, token_text

# a word of letters after one of these gets " word", whatever came before; and one of these
# after a word of letters is added as it is
PLAIN_BEFORE = frozenset([",", ".", ";", ":", "!", "?"])
OPENING, CLOSING = "``", "''"
# a quotation mark after one of these (or first in a sentence) opens a quotation, unless one is open
OPENS_AFTER = frozenset(["--", "(", "[", OPENING])


def quotes_directed(words: Sequence[str]) -> list[str]:
    """The words with each quotation mark as it goes: closing an open quotation of this sentence;
    else an opening mark opens, and a closing one opens at the sentence's start or after a dash or
    bracket (where the tokenizer writes an opening mark as ``''``)."""
    directed: list[str] = []
    open_quote = False
    for word in words:
        if word in (OPENING, CLOSING):
            opens = not open_quote and (word == OPENING or not directed or directed[-1] in OPENS_AFTER)
            word = OPENING if opens else CLOSING
            open_quote = opens
        directed.append(word)
    return directed


def shown_sentence(words: Sequence[str], forms: Mapping[str, str], sentence_start: bool = True) -> list[str]:
    """A sentence's words as the text shows them: quotation marks directed, the corpus's case."""
    return cased_words(quotes_directed(words), forms, sentence_start)


class IncrementalText:
    """The text of a prompt and the sentences that follow it, one word (or sentence end) at a time."""

    def __init__(self, prompt_words: list[str], forms: Mapping[str, str] | None = None):
        self.forms = forms or {}  # the corpus's case of words (models.casing); none: lower case
        self._given = list(prompt_words)  # the current sentence's words as the model has them
        self._words = shown_sentence(self._given, self.forms)  # ... and as the text shows them
        self.prompt = detokenize(self._words)
        self._before = ""  # everything before the current sentence
        self._last_render = self.prompt  # the detokenized text after the latest word
        self.text = self.prompt  # what has been handed out: prompt + every word's share

    def add(self, word: str) -> str:
        """Append ``word`` to the current sentence; returns the characters it adds to the text."""
        self._given.append(word)
        word = shown_sentence(self._given, self.forms)[-1]  # a word's form depends on the words before it alone
        self._words.append(word)
        words = self._words
        if len(words) > 1 and word.isalpha() and (words[-2].isalpha() or words[-2] in PLAIN_BEFORE):
            added = f" {word}"
            render = self._last_render + added
        elif len(words) > 1 and word in PLAIN_BEFORE and words[-2].isalpha():
            added = word
            render = self._last_render + added
        elif len(words) == 1 and word.isalpha():  # a sentence's first word: capitalised
            added = (" " if self._before else "") + word[:1].upper() + word[1:]
            render = self._last_render + added
        else:
            sentence = detokenize(self._words)
            render = f"{self._before} {sentence}" if self._before and sentence else self._before + sentence
            if render.startswith(self._last_render):
                added = render[len(self._last_render):]
            else:  # the detokenizer re-spaced earlier text: keep what was sent, add the word plainly
                added = f" {token_text(word)}"
        self._last_render = render
        self.text += added
        return added

    def end_sentence(self) -> None:
        """Start a new sentence (capitalised, after a space)."""
        self._given, self._words = [], []
        self._before = self._last_render = self.text
