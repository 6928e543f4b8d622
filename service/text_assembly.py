"""Readable text grown one word at a time, so each word can be sent as soon as it is chosen.

The whole text is detokenized again after every word (NLTK's Treebank detokenizer, as for a
finished sentence) and each word is given the characters its arrival added. The detokenizer
very rarely re-spaces text already sent (``a --`` becomes ``a--b`` once a word follows the
dash); that word is then sent with a single space before it, so the text assembled here, which
is what the API returns, always equals the words' texts joined.
"""
from __future__ import annotations

from models.text import detokenize


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
