"""The engine's admission, queue, deadlines and cancellation, with a decoder the test steps by
hand; and its words, with the Sampler's own decoder, against the single-sequence reference."""
from __future__ import annotations

import threading
from functools import partial
import time

import numpy as np
import pytest

from models.sampling import SampledWord, Sampler, SamplingParams
from models.batch_sampling import BatchSampler, SequenceSpec, sentence_stream
from service.engine import Engine, Overloaded, SequenceTimeout
from tests import waiting


class HandStepped:
    """Each sequence draws word 1, 2, ... up to its max_new_tokens; a step happens only when the
    test allows one (``allow``). Records what was added and removed."""

    def __init__(self):
        self.left: dict[object, int] = {}
        self.drawn: dict[object, int] = {}
        self.removed: list[object] = []
        self.permits = threading.Semaphore(0)
        self.steps = 0

    def add(self, key, spec):
        self.left[key], self.drawn[key] = spec.sampling.max_new_tokens, 0

    def remove(self, key):
        self.removed.append(key)
        self.left.pop(key, None)

    def step(self):
        self.permits.acquire()
        self.steps += 1
        out = []
        for key in list(self.left):
            if self.left[key] == 0:
                del self.left[key]
                out.append((key, None))
            else:
                self.left[key] -= 1
                self.drawn[key] += 1
                out.append((key, SampledWord(self.drawn[key], 0.0)))
        return out

    def allow(self, steps: int = 1) -> None:
        for _ in range(steps):
            self.permits.release()


def spec(words: int = 3, seed: int = 0) -> SequenceSpec:
    return SequenceSpec((), SamplingParams(max_new_tokens=words), seed)


def submit_in_thread(engine: Engine, specs, deadline=None, per_word=True) -> dict:
    """Submit from another thread (submit blocks until the request starts); the outcome lands in the dict."""
    outcome: dict = {}

    def run():
        try:
            outcome["handles"] = engine.submit(specs, deadline, per_word)
        except Overloaded as exc:
            outcome["refused"] = exc

    outcome["thread"] = threading.Thread(target=run)
    outcome["thread"].start()
    return outcome


wait_for = partial(waiting.wait_for, timeout=5.0, poll=0.002)


def test_requests_wait_for_a_place_and_start_in_order_of_arrival():
    decoder = HandStepped()
    engine = Engine(decoder, max_batch=2, max_queue=4)
    first = engine.submit([spec(2), spec(2)], None, per_word=True)  # fills the batch
    second = submit_in_thread(engine, [spec(1)])
    wait_for(lambda: engine.load() == (2, 1))
    third = submit_in_thread(engine, [spec(1)])
    wait_for(lambda: engine.load() == (2, 2))
    decoder.allow(3)  # two words each, then their end: two places free
    assert [w.word_id for w in first[0]] == [1, 2] and [w.word_id for w in first[1]] == [1, 2]
    second["thread"].join(5)
    third["thread"].join(5)
    assert "handles" in second and "handles" in third
    decoder.allow(2)
    assert [w.word_id for w in second["handles"][0]] == [1]


def test_a_full_queue_refuses_at_once_with_retry_after():
    decoder = HandStepped()
    engine = Engine(decoder, max_batch=1, max_queue=1)
    engine.submit([spec(5)], None, True)
    queued = submit_in_thread(engine, [spec(1)])
    wait_for(lambda: engine.load() == (1, 1))
    began = time.monotonic()
    with pytest.raises(Overloaded) as refused:
        engine.submit([spec(1)], None, True)
    assert time.monotonic() - began < 0.5 and refused.value.retry_after >= 1
    with pytest.raises(Overloaded):  # a request of two sequences does not fit the one place left either
        engine.submit([spec(1), spec(1)], None, True)
    decoder.allow(10)
    queued["thread"].join(5)
    assert "handles" in queued


def test_a_request_that_cannot_start_before_its_deadline_is_refused():
    decoder = HandStepped()
    engine = Engine(decoder, max_batch=1, max_queue=4)
    engine.submit([spec(50)], None, True)
    late = submit_in_thread(engine, [spec(1)], deadline=time.monotonic() + 0.05)
    time.sleep(0.1)
    decoder.allow(1)  # the scheduler looks at the queue between steps
    late["thread"].join(5)
    assert "could not start before its deadline" in str(late["refused"])
    assert engine.load() == (1, 0)
    decoder.allow(60)


def test_a_whole_request_returns_at_once_and_meets_its_refusal_when_iterated():
    decoder = HandStepped()
    engine = Engine(decoder, max_batch=1, max_queue=4)
    engine.submit([spec(50)], None, True)
    [late] = engine.submit([spec(1)], time.monotonic() + 0.05, per_word=False)  # does not wait for a place
    assert engine.load() == (1, 1)
    time.sleep(0.1)
    decoder.allow(1)
    with pytest.raises(Overloaded, match="could not start before its deadline"):
        list(late)
    assert engine.load() == (1, 0)
    decoder.allow(60)


def test_a_handle_knows_how_long_it_waited_for_a_place():
    decoder = HandStepped()
    engine = Engine(decoder, max_batch=1, max_queue=1)
    [first] = engine.submit([spec(1)], None, per_word=False)
    [second] = engine.submit([spec(1)], None, per_word=False)
    time.sleep(0.05)
    decoder.allow(2)  # the first's word and its end: the second joins
    assert [w.word_id for w in first] == [1]
    decoder.allow(2)
    assert [w.word_id for w in second] == [1]
    assert second.queue_seconds >= 0.05  # it waited for the first to end
    assert first.queue_seconds < second.queue_seconds


def test_a_sequence_past_its_deadline_is_stopped():
    decoder = HandStepped()
    engine = Engine(decoder, max_batch=4, max_queue=4)
    # a deadline far enough off that a loaded machine still admits the sequence before it
    deadline = time.monotonic() + 0.5
    [handle] = engine.submit([spec(50)], deadline, per_word=True)
    decoder.allow(1)
    words = iter(handle)
    assert next(words).word_id == 1
    time.sleep(max(0.0, deadline - time.monotonic()) + 0.05)
    decoder.allow(1)
    with pytest.raises(SequenceTimeout):
        next(words)
    wait_for(lambda: engine.load() == (0, 0))


def test_a_closed_sequence_leaves_the_batch_at_the_next_step():
    decoder = HandStepped()
    engine = Engine(decoder, max_batch=1, max_queue=1)
    [handle] = engine.submit([spec(50)], None, per_word=True)
    handle.close()
    decoder.allow(1)
    wait_for(lambda: handle in decoder.removed)
    assert engine.load() == (0, 0)
    engine.submit([spec(1)], None, True)  # its place is free again


def test_a_request_larger_than_the_batch_runs_when_alone():
    decoder = HandStepped()
    engine = Engine(decoder, max_batch=2, max_queue=0)
    handles = engine.submit([spec(1), spec(1), spec(1)], None, per_word=False)
    decoder.allow(2)
    assert [[w.word_id for w in h] for h in handles] == [[1], [1], [1]]


def test_a_failing_step_fails_its_sequences_and_the_engine_goes_on():
    class Failing(HandStepped):
        fail = True

        def step(self):
            if self.fail:
                self.fail = False
                self.permits.acquire()
                raise RuntimeError("boom")
            return super().step()

    decoder = Failing()
    engine = Engine(decoder, max_batch=2, max_queue=2)
    [handle] = engine.submit([spec(2)], None, True)
    decoder.allow(1)
    with pytest.raises(RuntimeError, match="boom"):
        list(handle)
    [handle] = engine.submit([spec(2)], None, True)
    decoder.allow(3)
    assert [w.word_id for w in handle] == [1, 2]


def test_words_come_all_at_once_unless_asked_for_one_by_one():
    decoder = HandStepped()
    engine = Engine(decoder, max_batch=2, max_queue=0)
    [whole] = engine.submit([spec(3)], None, per_word=False)
    streamed = submit_in_thread(engine, [spec(3)], per_word=True)
    decoder.allow(1)  # the step under way ends; the stream joins after it
    streamed["thread"].join(5)
    decoder.allow(1)
    assert next(iter(streamed["handles"][0])).word_id == 1  # its first word, while `whole` holds two
    decoder.allow(4)
    assert [w.word_id for w in whole] == [1, 2, 3]


@pytest.fixture(scope="module")
def sampler(tiny_loaded_model) -> Sampler:
    return Sampler(tiny_loaded_model.model, tiny_loaded_model.vocab)


def test_requests_from_many_threads_get_the_reference_words(sampler):
    """Sequences of mixed parameters submitted from many threads, joining the batch at
    different times, each get the single-sequence Sampler's words."""
    engine = Engine(BatchSampler(sampler), max_batch=8, max_queue=64)
    rng = np.random.default_rng(0)
    specs = [SequenceSpec((), SamplingParams(max_new_tokens=int(rng.integers(1, 20)),
                                             top_k=[None, 3][i % 2], do_sample=i % 5 != 0,
                                             typical_p=[None, 0.8][i % 4 == 1],
                                             frequency_penalty=[0.0, 0.7][i % 2 == 1],
                                             presence_penalty=[0.0, -0.5][i % 3 == 2],
                                             logit_bias=((5, 2.0), (7, -100.0)) if i % 6 == 2 else ()),
                          seed=i, repetition_penalty=[1.0, 1.5][i % 3 == 0], top_n=i % 3, num_sentences=1 + i % 3)
             for i in range(24)]
    results: dict[int, list] = {}

    def one(i):
        [handle] = engine.submit([specs[i]], None, per_word=i % 2 == 0)
        results[i] = list(handle)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(specs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for i, s in enumerate(specs):
        alone = list(sentence_stream(sampler, s))
        assert [w.word_id for w in results[i]] == [w.word_id for w in alone], i
        np.testing.assert_allclose([w.logprob for w in results[i]], [w.logprob for w in alone], atol=1e-5)


def test_the_batch_is_bounded_by_the_rows_a_model_is_made_ready_for():
    """RNNLM_MAX_BATCH above MOST_ROWS would run products whose row-stability was never measured."""
    from models.softmax import MOST_ROWS
    from service.config import ConfigError, ServiceConfig

    assert ServiceConfig.from_env({"RNNLM_MAX_BATCH": str(MOST_ROWS)}).max_batch == MOST_ROWS
    with pytest.raises(ConfigError, match=f"RNNLM_MAX_BATCH must be an integer <= {MOST_ROWS}"):
        ServiceConfig.from_env({"RNNLM_MAX_BATCH": str(MOST_ROWS + 1)})
