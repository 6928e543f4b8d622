"""Text in, sentences out: the generation layer between the HTTP API and ``models.sampling``.

It tokenizes the request's starting words, runs the Sampler once per sentence with one
``numpy.random.Generator`` seeded per request (so a seed gives the same text in every worker
process and through every route), and turns word indices into readable text as they come.
Streamed and whole responses are the same iteration: ``TextGenerator.start`` hands out a
``Generation`` whose tokens arrive one by one; ``generate`` simply runs it to the end.
"""
from __future__ import annotations

import logging
import math
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from models.mixture import NgramMixture
from models.recurrent_lm import RecurrentLM
from models.sampling import SampledWord, Sampler, SamplingParams
from models.text import tokenize_words
from models.vocabulary import SPECIAL_TOKENS, Vocabulary
from models.batch_sampling import SequenceSpec, sentence_stream
from service.engine import Engine, Overloaded, SequenceTimeout
from service.stop_sequences import earliest_stop, undecided_tail
from service.text_assembly import IncrementalText

logger = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1


class _SeedPool:
    """Seeds from the operating system's generator, read 512 at a time: reading them one by one
    is a system call per request, which lets the other threads take the interpreter lock."""

    def __init__(self) -> None:
        self._seeds: list[int] = []

    def draw(self) -> int:
        try:
            return self._seeds.pop()  # (one bytecode: threads can share the pool)
        except IndexError:
            fresh = secrets.token_bytes(8 * 512)
            self._seeds = [int.from_bytes(fresh[i:i + 8], "little") >> 1 for i in range(0, len(fresh), 8)]
            return self._seeds.pop()

    def clear(self) -> None:
        self._seeds = []


_SEED_POOL = _SeedPool()
os.register_at_fork(after_in_child=_SEED_POOL.clear)  # workers must not share the seeds a master drew


def fresh_seed() -> int:
    """A new random seed in 0..2**63-1, reported back so the client can reproduce the output."""
    return _SEED_POOL.draw()


def nth_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th of several sequences asked for with one seed: each can be
    reproduced alone by sending its own seed."""
    return (seed + index) % (MAX_SEED + 1)


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate.

    ``sampling.max_new_tokens`` caps the new words of *each* sentence (not the total), and
    ``sampling.min_words`` counts every word of a sentence, the starting words included.
    ``inputs`` are the words the first sentence starts with; later sentences start fresh.
    ``seed`` None means: draw a fresh one. ``stop`` strings end the whole generation where
    they first appear in the new text, and are cut from it. ``top_n_tokens`` asks for that
    many likeliest alternatives at every step. ``max_words`` ends the whole generation
    (finish_reason ``length``) once it has that many new words in all its sentences.
    """

    inputs: str = ""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    num_sentences: int = 1
    seed: int | None = None
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    top_n_tokens: int = 0
    max_words: int | None = None  # this sequence's share of the request's word budget


@dataclass(frozen=True)
class Alternative:
    """One of the likeliest words at a step: its vocabulary entry and model log-probability."""

    id: int
    text: str
    logprob: float
    special: bool


@dataclass
class GeneratedToken:
    """One step of the model: a word, or the end of a sentence (``special``, no text). (Not
    frozen: one is made per generated word, and a frozen dataclass costs about 4x as much to build.)

    ``text`` is what the token adds to the output text (``" cat"``, ``","``): the tokens'
    texts joined are the new text. ``logprob`` is the model's, before temperature, top-k,
    top-p and repetition penalty.
    """

    id: int
    text: str
    logprob: float
    special: bool
    sentence: int
    alternatives: tuple[Alternative, ...] = ()


@dataclass(frozen=True)
class GeneratedSentence:
    """One sentence: the words it started with, the new words and their model log-probabilities."""

    prefix_words: list[str]
    new_words: list[str]
    logprobs: list[float]
    finish_reason: str  # "eos_token", "length" or "stop_sequence"
    text: str  # the sentence as returned (cut at a stop sequence)

    @property
    def words(self) -> list[str]:
        return self.prefix_words + self.new_words


@dataclass(frozen=True)
class GenerationResult:
    sentences: list[GeneratedSentence]
    tokens: list[GeneratedToken]
    seed: int
    unknown_words: list[str]
    prompt_text: str  # the starting words as the model read them, detokenized
    new_text: str  # the text after the prompt (cut at a stop sequence)
    stopped: bool = False  # a stop sequence ended the generation
    queue_seconds: float = field(default=0.0, compare=False)  # how long its request waited for room in the batch

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.sentences]

    @property
    def full_text(self) -> str:
        """The prompt followed by the new text."""
        return self.prompt_text + self.new_text

    @property
    def finish_reason(self) -> str:
        """``stop_sequence`` if a stop string ended it, ``length`` if any sentence was cut by
        max_new_tokens, else ``eos_token``."""
        if self.stopped:
            return "stop_sequence"
        return "length" if any(s.finish_reason == "length" for s in self.sentences) else "eos_token"

    @property
    def generated_tokens(self) -> int:
        """Model steps: new words and sentence ends."""
        return len(self.tokens)

    @property
    def generated_words(self) -> int:
        return sum(len(s.new_words) for s in self.sentences)

    @property
    def mean_logprob(self) -> float:
        """Mean model log-probability per token (how best_of ranks sequences); 0 for none."""
        return math.fsum(t.logprob for t in self.tokens) / len(self.tokens) if self.tokens else 0.0


class GenerationTimeout(Exception):
    """A generation ran past the per-request time limit and was stopped."""

    def __init__(self, limit: float):
        super().__init__(f"the generation was stopped at the time limit of {limit:g} s per request; "
                         "ask for fewer sentences, tokens or sequences")
        self.limit = limit


class GenerationFailed(Exception):
    """The model failed while generating (a fault of the server, logged where it happened):
    answered 424, as TGI answers a failed generation."""

    def __init__(self) -> None:
        super().__init__("the generation failed; the fault is logged on the server")


class TextGenerator:
    """Generates sentences with one Sampler, built once when the service starts.

    With an ``engine`` every sequence is generated by it (batched with the worker's other
    sequences, queued when the batch is full); without one, by the Sampler in the calling
    thread, which is the reference the engine is tested against. The Sampler keeps no state
    between calls, so threads share it freely. ``time_limit`` (seconds, None for none) bounds
    each request: a generation still running at its deadline raises GenerationTimeout.
    """

    def __init__(self, model: RecurrentLM, vocab: Vocabulary, mixture: NgramMixture | None = None,
                 time_limit: float | None = None, engine: Engine | None = None):
        self.vocab = vocab
        self.sampler = Sampler(model, vocab, mixture)
        self.time_limit = time_limit
        self.engine = engine

    def deadline(self) -> float | None:
        """The monotonic time by which a request starting now must be done."""
        return None if self.time_limit is None else time.monotonic() + self.time_limit

    def unknown_words(self, words: list[str]) -> list[str]:
        """Words not in the vocabulary, each once, in order of first appearance."""
        return list(dict.fromkeys(w for w in words if w not in self.vocab))

    def sequence_spec(self, request: GenerationRequest, seed: int, prompt_words: list[str]) -> SequenceSpec:
        """What the Sampler or the engine must draw for ``request`` with ``seed``."""
        return SequenceSpec(tuple(self.vocab.encode(prompt_words)), request.sampling, seed,
                            request.repetition_penalty, request.top_n_tokens, request.num_sentences)

    def start(self, request: GenerationRequest, deadline: float | None = None, stream: bool = False) -> Generation:
        """A generation ready to run; iterate it for tokens, then read its ``result``. Its
        deadline is ``deadline``, or the time limit from now."""
        return self.start_all([request], deadline, stream)[0]

    def start_all(self, requests: list[GenerationRequest], deadline: float | None = None,
                  stream: bool = False) -> list[Generation]:
        """Generations for the sequences of one request, under one deadline; with the engine,
        they are queued when this returns (Overloaded if the queue is full; a refusal at the
        deadline comes from their iteration, or from here when ``stream``). ``stream`` asks for each
        word as soon as it is drawn (stop strings ask for it too)."""
        deadline = self.deadline() if deadline is None else deadline
        seeds = [fresh_seed() if r.seed is None else r.seed for r in requests]
        prompts = {inputs: tokenize_words(inputs) if inputs.strip() else [] for inputs in {r.inputs for r in requests}}
        specs = [self.sequence_spec(r, seed, prompts[r.inputs]) for r, seed in zip(requests, seeds)]
        if self.engine is None:
            sources: list[Iterable[SampledWord]] = [sentence_stream(self.sampler, spec) for spec in specs]
        else:
            per_word = stream or any(r.stop for r in requests)
            sources = list(self.engine.submit(specs, deadline, per_word))
        return [Generation(self, r, seed, deadline, source, prompts[r.inputs])
                for r, seed, source in zip(requests, seeds, sources)]

    def generate(self, request: GenerationRequest, deadline: float | None = None) -> GenerationResult:
        """Sentences for a checked request; the result carries the seed that was used."""
        return self.generate_several(request, 1, deadline)[0]

    def generate_several(self, request: GenerationRequest, count: int, deadline: float | None = None) -> list[GenerationResult]:
        """``count`` sequences for one request; the i-th uses the request's seed + i, so each can
        be reproduced alone, and the first is what the request alone would give."""
        return run_all(self.start_all([request] if count == 1 else several(request, count), deadline))

    def alternatives(self, sampled: SampledWord) -> tuple[Alternative, ...]:
        if not sampled.alternatives:
            return ()
        return tuple(
            Alternative(i, self.vocab.words[i], logprob, self.vocab.words[i] in SPECIAL_TOKENS)
            for i, logprob in sampled.alternatives
        )


def several(request: GenerationRequest, count: int) -> list[GenerationRequest]:
    """``count`` copies of ``request`` with seeds seed, seed + 1, ... (a fresh seed if it has none)."""
    seed = fresh_seed() if request.seed is None else request.seed
    return [replace(request, seed=nth_seed(seed, i)) for i in range(count)]


def run_all(generations: list[Generation]) -> list[GenerationResult]:
    """Run each generation to its end (the engine advances them all together meanwhile)."""
    try:
        for generation in generations:
            for _ in generation:
                pass
    finally:
        for generation in generations:
            generation.close()
    return [generation.result for generation in generations]


@dataclass
class _Pending:
    """A token whose text may still be cut by a stop string, with where that text starts."""

    sampled: SampledWord
    text: str
    start: int
    sentence: int


class Generation:
    """One generated sequence. Iterating yields each token once its text is final: at once
    without stop strings; with them, a token is held back while its text could still be the
    start of a stop string. After the iteration, ``result`` holds the whole answer.

    ``words`` is the sequence's stream of drawn words (the engine's handle, or the Sampler's
    iterator): each sentence ends with SENTENCE_END or after ``max_new_tokens`` words."""

    def __init__(self, generator: TextGenerator, request: GenerationRequest, seed: int, deadline: float | None,
                 words: Iterable[SampledWord], prompt_words: list[str]):
        self.generator = generator
        self.request = request
        self.seed = seed
        self.deadline = deadline
        self.words = words
        self.prompt_words = prompt_words  # the request's inputs, tokenized
        self._result: GenerationResult | None = None

    @property
    def finished(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> GenerationResult:
        if self._result is None:
            raise RuntimeError("the generation has not run to its end yet")
        return self._result

    def close(self) -> None:
        """Stop drawing words for this sequence (it is not needed any more)."""
        close = getattr(self.words, "close", None)
        if close is not None:
            close()

    def __iter__(self) -> Iterator[GeneratedToken]:
        request, vocab, deadline = self.request, self.generator.vocab, self.deadline
        words_of, end_id, alternatives = vocab.words, vocab.end_id, self.generator.alternatives
        max_new_tokens, max_words, stops = request.sampling.max_new_tokens, request.max_words, request.stop
        text = IncrementalText(self.prompt_words, vocab.casing)
        new_text = ""  # text.text without the prompt
        pending: list[_Pending] = []  # with stop strings: the tokens not yet released
        released: list[GeneratedToken] = []
        unreleased: GeneratedToken | None = None  # without stop strings: the last token, if the loop ended before yielding it
        sentence_ends: list[str] = []
        stop_at: int | None = None
        words_in_sentence = words_in_all = 0
        try:
            for sampled in self.words:
                if deadline is not None and time.monotonic() > deadline:
                    raise GenerationTimeout(self.generator.time_limit)
                word_id, finish = sampled.word_id, None
                if word_id == end_id:
                    added, finish = "", "eos_token"
                else:
                    added = text.add(words_of[word_id])
                    words_in_sentence += 1
                    words_in_all += 1
                    if words_in_sentence == max_new_tokens or words_in_all == max_words:
                        finish = "length"
                if stops:
                    pending.append(_Pending(sampled, added, len(new_text), len(sentence_ends)))
                    new_text += added
                    stop_at = earliest_stop(new_text, stops, len(new_text) - len(added))
                    if stop_at is not None:
                        finish = "stop_sequence"
                    settled = len(new_text) - undecided_tail(new_text, stops)
                else:  # every token is final at once: no pending list, no release pass
                    new_text += added
                    token = GeneratedToken(word_id, added, sampled.logprob, word_id == end_id, len(sentence_ends),
                                           alternatives(sampled))
                    released.append(token)
                if finish is not None:
                    text.end_sentence()
                    sentence_ends.append(finish)
                    words_in_sentence = 0
                    if stop_at is not None or len(sentence_ends) == request.num_sentences or words_in_all == max_words:
                        unreleased = None if stops else token
                        break
                if stops:
                    yield from self._release(pending, released, settled, None)
                else:
                    yield token
        except SequenceTimeout:
            raise GenerationTimeout(self.generator.time_limit) from None
        except (GenerationTimeout, Overloaded):
            raise
        except Exception as exc:  # the engine has logged it, or the Sampler raised it here
            logger.error("generation failed: %r", exc)
            raise GenerationFailed() from exc
        finally:
            self.close()
        if stops:
            yield from self._release(pending, released, len(new_text), stop_at)
        elif unreleased is not None:
            yield unreleased
        self._result = self._assemble(released, sentence_ends, text.prompt, new_text[:stop_at])
        logger.debug(
            "generated %d sentence(s), %d tokens, seed %d", len(sentence_ends), len(released), self.seed,
        )

    def _release(
        self, pending: list[_Pending], released: list[GeneratedToken], settled: int, stop_at: int | None
    ) -> Iterator[GeneratedToken]:
        """Yield (and record) the pending tokens whose text ends by ``settled``, cut at ``stop_at``."""
        while pending and pending[0].start + len(pending[0].text) <= settled:
            item = pending.pop(0)
            keep = len(item.text) if stop_at is None else max(0, min(len(item.text), stop_at - item.start))
            token = GeneratedToken(
                id=item.sampled.word_id,
                text=item.text[:keep],
                logprob=item.sampled.logprob,
                special=item.sampled.word_id == self.generator.vocab.end_id,
                sentence=item.sentence,
                alternatives=self.generator.alternatives(item.sampled),
            )
            released.append(token)
            yield token

    def _assemble(
        self, tokens: list[GeneratedToken], finishes: list[str], prompt_text: str, new_text: str
    ) -> GenerationResult:
        vocab = self.generator.vocab
        sentences = []
        for index, finish in enumerate(finishes):
            own = [t for t in tokens if t.sentence == index and not t.special]
            prefix = self.prompt_words if index == 0 else []
            body = (prompt_text if index == 0 else "") + "".join(t.text for t in own)
            sentences.append(GeneratedSentence(
                prefix_words=list(prefix),
                new_words=vocab.decode(t.id for t in own),
                logprobs=[t.logprob for t in own],
                finish_reason=finish,
                text=body.strip(),
            ))
        return GenerationResult(
            sentences=sentences,
            tokens=tokens,
            seed=self.seed,
            unknown_words=self.generator.unknown_words(self.prompt_words),
            prompt_text=prompt_text,
            new_text=new_text,
            stopped="stop_sequence" in finishes,
            queue_seconds=getattr(self.words, "queue_seconds", 0.0),  # the engine's handles know it
        )
