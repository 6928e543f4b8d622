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
"""
from __future__ import annotations

from models.text import detokenize

# a word of letters after one of these gets " word", whatever came before; and one of these
# after a word of letters is added as it is
PLAIN_BEFORE = frozenset([",", ".", ";", ":", "!", "?"])


class IncrementalText:
    """The text of a prompt and the sentences that follow it, one word (or sentence end) at a time."""

    def __init__(self, prompt_words: list[str]):
        self.prompt = detokenize(prompt_words)
        self._words = list(prompt_words)  # the current sentence's words
        self._before = ""  # everything before the current sentence
        self._last_render = self.prompt  # the detokenized text after the latest word
        self.text = self.prompt  # what has been handed out: prompt + every word's share

    def add(self, word: str) -> str:
        """Append ``word`` to the current sentence; returns the characters it adds to the text."""
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
                added = f" {word}"
        self._last_render = render
        self.text += added
        return added

    def end_sentence(self) -> None:
        """Start a new sentence (capitalised, after a space)."""
        self._words = []
        self._before = self._last_render = self.text
