"""Text in, sentences out: the generation layer between the HTTP API and ``models.sampling``.

It tokenizes the request's starting words, runs the Sampler once per sentence with one
``numpy.random.Generator`` seeded per request (so a seed gives the same text in every worker
process), and turns word indices back into readable text.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

import numpy as np

from models.rnn import RNN
from models.sampling import Sampler, SamplingParams
from models.text import detokenize, tokenize_words
from models.vocabulary import Vocabulary

logger = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1


def fresh_seed() -> int:
    """A new random seed in 0..2**63-1, reported back so the client can reproduce the output."""
    return secrets.randbits(63)


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate.

    ``sampling.max_new_tokens`` caps the new words of *each* sentence (not the total), and
    ``sampling.min_words`` counts every word of a sentence, the starting words included.
    ``inputs`` are the words the first sentence starts with; later sentences start fresh.
    ``seed`` None means: draw a fresh one.
    """

    inputs: str = ""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    num_sentences: int = 1
    seed: int | None = None


@dataclass(frozen=True)
class GeneratedSentence:
    """One sentence: the words it started with, the new words and their model log-probabilities."""

    prefix_words: list[str]
    new_words: list[str]
    logprobs: list[float]
    finish_reason: str  # "eos_token" or "length"

    @property
    def words(self) -> list[str]:
        return self.prefix_words + self.new_words

    @property
    def text(self) -> str:
        return detokenize(self.words)


@dataclass(frozen=True)
class GenerationResult:
    sentences: list[GeneratedSentence]
    seed: int
    unknown_words: list[str]

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.sentences]

    @property
    def generated_text(self) -> str:
        """The sentences joined by a space (a sentence with no words adds no space)."""
        return " ".join(text for text in self.texts if text)

    @property
    def finish_reason(self) -> str:
        """``length`` if any sentence was cut by max_new_tokens, else ``eos_token``."""
        return "length" if any(s.finish_reason == "length" for s in self.sentences) else "eos_token"

    @property
    def generated_tokens(self) -> int:
        return sum(len(s.new_words) for s in self.sentences)


class TextGenerator:
    """Generates sentences with one Sampler, built once when the service starts.

    The Sampler keeps no state between calls, so the threads of a worker share it freely.
    """

    def __init__(self, model: RNN, vocab: Vocabulary):
        self.vocab = vocab
        self.sampler = Sampler(model, vocab)

    def unknown_words(self, words: list[str]) -> list[str]:
        """Words not in the vocabulary, each once, in order of first appearance."""
        return list(dict.fromkeys(w for w in words if w not in self.vocab))

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Sentences for a checked request; the result carries the seed that was used."""
        seed = fresh_seed() if request.seed is None else request.seed
        rng = np.random.default_rng(seed)
        prefix_words = tokenize_words(request.inputs)
        prefixes = [prefix_words] + [[] for _ in range(request.num_sentences - 1)]
        sentences = [self._sentence(words, request.sampling, rng) for words in prefixes]
        result = GenerationResult(sentences, seed, self.unknown_words(prefix_words))
        logger.debug(
            "generated %d sentence(s), %d new words, seed %d",
            len(sentences), result.generated_tokens, seed,
        )
        return result

    def _sentence(
        self, prefix_words: list[str], params: SamplingParams, rng: np.random.Generator
    ) -> GeneratedSentence:
        # out-of-vocabulary words are fed to the model as UNKNOWN_TOKEN but shown as typed
        sample = self.sampler.sample_sentence(self.vocab.encode(prefix_words), params, rng)
        return GeneratedSentence(
            prefix_words=list(prefix_words),
            new_words=self.vocab.decode(sample.new_ids),
            logprobs=list(sample.logprobs),
            finish_reason=sample.finish_reason,
        )
