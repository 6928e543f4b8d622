"""Readable text grown one word at a time, so each word can be sent as soon as it is chosen.

Each word is given the characters its arrival adds to the detokenized text (NLTK's Treebank
detokenizer, as for a finished sentence). Detokenizing costs about 30 regular-expression passes
per call whatever the length, which made it 40% of a request's CPU; so the common cases take a
short path (``IncrementalText._short_path``): a word after a word, a punctuation mark, a quotation
mark, a dash or a contraction's ending (``'s``); a punctuation mark, a quotation mark, a dash or a
contraction's ending after a word; the second word of a joined pair (``can not``); and a sentence's
first word (capitalised); any other word detokenizes the sentence again
(``tests/test_generation_stream.py`` checks both against detokenizing the whole sentence after
every word, on random sentences). Sentences of the default model take the short path for all but
about one word in 110. The detokenizer very rarely re-spaces text already sent
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

from models.casing import SentenceCase
from models.text import detokenize, joined_word_pairs, token_text

# a word of letters after one of these gets " word", whatever came before; and one of these
# after a word of letters is added as it is
PLAIN_BEFORE = frozenset([",", ".", ";", ":", "!", "?"])
OPENING, CLOSING = "``", "''"
# the word pairs the detokenizer joins ("can not" -> "cannot", "gon na" -> "gonna"): detokenized
JOINED_PAIRS = joined_word_pairs()
JOINED_FIRSTS = frozenset(first for first, _ in JOINED_PAIRS)
# the endings the detokenizer joins to the word of letters before them ("fanny 's" -> "fanny's"; its
# ENDING_QUOTES rules); a word of letters after one of them gets " word"
ATTACHED = frozenset(["'s", "'S", "'m", "'M", "'d", "'D", "'ll", "'LL", "'re", "'RE", "'ve", "'VE", "n't", "N'T"])
# a quotation mark after one of these (or first in a sentence) opens a quotation, unless one is open
OPENS_AFTER = frozenset(["--", "(", "[", OPENING])


class ShownWords:
    """A sentence's words as the text shows them, one at a time: each quotation mark turned the
    way it goes (closing an open quotation of this sentence; else an opening mark opens, and a
    closing one opens at the sentence's start or after a dash or bracket, where the tokenizer
    writes an opening mark as ``''``), and every word in the corpus's case. A word's form depends
    on the words before it alone, so each is decided once, as it comes."""

    def __init__(self, forms: Mapping[str, str], sentence_start: bool = True):
        self.case = SentenceCase(forms, sentence_start)
        self.open_quote = False
        self.previous: str | None = None  # the last word, its quotation mark directed

    def directed(self, word: str) -> str:
        """``word`` with its quotation mark turned the way it goes."""
        if word in (OPENING, CLOSING):
            opens = not self.open_quote and (word == OPENING or self.previous is None or self.previous in OPENS_AFTER)
            word = OPENING if opens else CLOSING
            self.open_quote = opens
        self.previous = word
        return word

    def show(self, word: str) -> str:
        return self.case.form(self.directed(word))


def quotes_directed(words: Sequence[str]) -> list[str]:
    """The words with each quotation mark turned the way it goes (``ShownWords``)."""
    shown = ShownWords({})
    return [shown.directed(word) for word in words]


def shown_sentence(words: Sequence[str], forms: Mapping[str, str], sentence_start: bool = True) -> list[str]:
    """A sentence's words as the text shows them: quotation marks directed, the corpus's case."""
    shown = ShownWords(forms, sentence_start)
    return [shown.show(word) for word in words]


class IncrementalText:
    """The text of a prompt and the sentences that follow it, one word (or sentence end) at a time."""

    def __init__(self, prompt_words: list[str], forms: Mapping[str, str] | None = None):
        self.forms = forms or {}  # the corpus's case of words (models.casing); none: lower case
        self._shown = ShownWords(self.forms)
        self._words = [self._shown.show(word) for word in prompt_words]  # the sentence as the text shows it
        self.prompt = detokenize(self._words) if self._words else ""
        self._before = ""  # everything before the current sentence
        self._last_render = self.prompt  # the detokenized text after the latest word
        self.text = self.prompt  # what has been handed out: prompt + every word's share
        self._last_like = bool(self._words) and _word_like(self._words[-1])  # the latest word is _word_like

    def add(self, word: str) -> str:
        """Append ``word`` to the current sentence; returns the characters it adds to the text."""
        word = self._shown.show(word)
        words = self._words
        words.append(word)
        like = word.isalpha() or _word_like(word)
        short = self._short_path(word, like, words[-2] if len(words) > 1 else None)
        self._last_like = like
        if short is not None:
            added, render = short
        else:
            sentence = detokenize(words)
            render = f"{self._before} {sentence}" if self._before and sentence else self._before + sentence
            if render.startswith(self._last_render):
                added = render[len(self._last_render):]
            else:  # the detokenizer re-spaced earlier text: keep what was sent, add the word plainly
                added = f" {token_text(word)}"
        self._last_render = render
        self.text += added
        return added

    def _short_path(self, word: str, like: bool, previous: str | None) -> tuple[str, str] | None:
        """What ``word`` (``like``: it is _word_like) adds after ``previous`` (None: it starts the
        sentence), and the sentence's text as the detokenizer now writes it, where both are known
        without detokenizing; else None."""
        last = self._last_render
        if previous is None:
            space = " " if self._before else ""
            if like:  # capitalised
                added = space + word[:1].upper() + word[1:]
            elif word == OPENING:
                added = space + '"'
            else:
                return None
        elif like:
            if previous == OPENING:
                added = word
            elif self._last_like:  # (a joined pair starts with a word of letters)
                first = previous.lower()
                joined = first in JOINED_FIRSTS and (first, word.lower()) in JOINED_PAIRS
                added = word if joined else f" {word}"
            elif previous in PLAIN_BEFORE or previous == CLOSING or previous in ATTACHED:
                added = f" {word}"
            elif previous == "--" and self._dash_spaced():
                # the dash, sent as " --", is now written "--word": the text sent keeps its space
                return f" {word}", f"{last[:-3]}--{word}"
            else:
                return None
        elif word in PLAIN_BEFORE:
            if not (previous.isalpha() or previous == CLOSING):
                return None
            added = word
        elif word == CLOSING:
            if not (self._last_like or previous in PLAIN_BEFORE):
                return None
            added = '"'
        elif word in ATTACHED:
            if not self._last_like:
                return None
            added = word
        elif (word == OPENING or word == "--") and (self._last_like or previous in PLAIN_BEFORE):
            added = ' "' if word == OPENING else " --"
        else:
            return None
        return added, last + added

    def _dash_spaced(self) -> bool:
        """Whether the sentence's last word, a dash, took the short path (its text " --" after the
        word before it)."""
        words = self._words
        return len(words) > 2 and (_word_like(words[-3]) or words[-3] in PLAIN_BEFORE)

    def end_sentence(self) -> None:
        """Start a new sentence (capitalised, after a space)."""
        self._shown, self._words, self._last_like = ShownWords(self.forms), [], False
        self._before = self._last_render = self.text


def _word_like(word: str) -> bool:
    """Letters, or letters and a full stop (an abbreviation: ``mrs.``)."""
    return word.isalpha() or (word[-1:] == "." and word[:-1].isalpha())
