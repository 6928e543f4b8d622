"""A prompt's words as the model reads them, with where each stands in the text as sent: for
POST /tokenize (TGI's shape) and for the offsets of OpenAI's echoed prompt tokens."""
from __future__ import annotations

from dataclasses import dataclass

from models.text import tokenize_words
from models.vocabulary import Vocabulary


@dataclass(frozen=True)
class PromptToken:
    """One word: its vocabulary number (UNKNOWN_TOKEN's for a word outside the vocabulary), the
    word as the model reads it (lowercased), and its characters [start, stop) in the text."""

    id: int
    word: str
    start: int
    stop: int

    def text_in(self, text: str) -> str:
        """The word as ``text`` has it, or as the model reads it where the tokenizer rewrote it."""
        return text[self.start:self.stop] or self.word


def prompt_tokens(vocab: Vocabulary, text: str) -> list[PromptToken]:
    """The words of ``text`` read as one sentence, as generation reads a prompt. A word the
    tokenizer rewrote (Treebank turns a double quote into two quote marks) is not found in the
    text: it gets an empty span where the previous word ended."""
    words = tokenize_words(text)
    lowered = text.lower()
    tokens, cursor = [], 0
    for word, word_id in zip(words, vocab.encode(words)):
        at = lowered.find(word, cursor) if len(lowered) == len(text) else -1
        start, stop = (at, at + len(word)) if at >= 0 else (cursor, cursor)
        tokens.append(PromptToken(word_id, word, start, stop))
        cursor = stop
    return tokens
