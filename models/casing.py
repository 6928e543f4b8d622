"""The casing the corpus gave its words, restored on the lower-cased words a model generates.

Training reads lower-cased words; the corpus's surface forms are counted where they are lower-cased
(``training.token_cache``). A word's form is its most frequent surface form away from the start of
a sentence, where capitals say nothing about the word; a word seen only at sentence starts takes
its most frequent form there. Only forms that differ from the word itself are kept ("i" -> "I",
"elinor" -> "Elinor"). Generated text then capitalises each sentence's first word, as prose does.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

# (surface form, at a sentence start) -> occurrences
SurfaceCounts = Counter


def has_letters(token: str) -> bool:
    return any(ch.isalpha() for ch in token)


def count_surface_forms(sentences: Iterable[Sequence[str]], counts: SurfaceCounts | None = None) -> SurfaceCounts:
    """Add each token's (surface form, sentence-initial) to ``counts``: a sentence's first token
    with letters is sentence-initial (an opening quotation mark before it does not count)."""
    counts = SurfaceCounts() if counts is None else counts
    for sentence in sentences:
        initial = True
        for token in sentence:
            counts[token, initial and has_letters(token)] += 1
            if has_letters(token):
                initial = False
    return counts


def majority_forms(counts: Mapping[tuple[str, bool], int]) -> dict[str, str]:
    """Each lower-cased word's form (see the module's docstring), where it is not the word itself.
    Ties go to the lower-case form, then to the alphabetically first."""
    inside: dict[str, Counter] = {}
    initial: dict[str, Counter] = {}
    for (surface, at_start), count in counts.items():
        (initial if at_start else inside).setdefault(surface.lower(), Counter())[surface] += count
    forms = {}
    for word in set(inside) | set(initial):
        seen = inside.get(word) or initial[word]
        form = min(seen, key=lambda s: (-seen[s], s != word, s))
        if form != word:
            forms[word] = form
    return forms


def capitalised(word: str) -> str:
    return word[:1].upper() + word[1:]


class SentenceCase:
    """The corpus's forms of a sentence's words, one word at a time (a word's form depends on the
    words before it alone); the first word with letters capitalised when the words start a sentence."""

    def __init__(self, forms: Mapping[str, str], sentence_start: bool = True):
        self.forms = forms
        self.capitalise_next = sentence_start

    def form(self, word: str) -> str:
        form = self.forms.get(word, word)
        if self.capitalise_next and has_letters(word):
            form, self.capitalise_next = capitalised(form), False
        return form


def cased_words(words: Sequence[str], forms: Mapping[str, str], sentence_start: bool = True) -> list[str]:
    """The corpus's forms of a sentence's words (``SentenceCase``)."""
    case = SentenceCase(forms, sentence_start)
    return [case.form(word) for word in words]
