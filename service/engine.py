"""The generation engine of one worker process: a scheduler thread that owns every in-flight
sequence, advances them all one word per step together, and hands each sequence's words to the
request thread waiting for them.

Admission: a request's sequences join the batch (at most ``max_batch`` sequences) between two
steps; when the batch is full they wait in a queue of at most ``max_queue`` sequences. A
request is refused (``Overloaded``, a 429 with Retry-After) only when the queue has no room for
it, or when it could not start before its deadline. A sequence still running at its deadline
gets ``GenerationTimeout``; one whose request thread went away (a client that disconnected
from a stream) is dropped at the next step.

How a step advances the sequences is the ``Decoder``'s business (``models.batch_sampling``'s
``BatchSampler``: one matrix of states, one product with the output layer for all), so the
admission, deadlines and streaming here do not depend on it.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from models.batch_sampling import SequenceSpec
from models.sampling import SampledWord

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1


class Overloaded(Exception):
    """No room for a request: the queue is full, or it could not start before its deadline
    (answered 429 with Retry-After, see service.errors)."""

    def __init__(self, reason: str):
        super().__init__(f"Model is overloaded: {reason}; try again shortly")
        self.retry_after = RETRY_AFTER_SECONDS


class SequenceTimeout(Exception):
    """The sequence was still running at its deadline (the engine stopped it)."""


class Decoder(Protocol):
    """Advances a set of sequences one word per step. Keys are the engine's own objects."""

    def add(self, key: object, spec: SequenceSpec) -> None: ...

    def remove(self, key: object) -> None: ...

    def step(self) -> list[tuple[object, SampledWord | None]]:
        """One word for every sequence added; None for a sequence that has ended (and is removed)."""
        ...


_END = object()  # the last item a sequence's channel receives after its words
_STARTED = object()  # the first item a per-word sequence's channel receives: it has joined the batch


class SequenceHandle:
    """The request thread's side of one sequence: iterate it for its words (blocking until the
    engine has drawn them); ``close`` tells the engine to drop it.

    Every hand-over from the engine wakes the request thread, and a wake-up under the GIL is the
    dearest part of a short request; so a whole (not per-word) sequence is woken once, at its end,
    and a refusal reaches it there too: only a per-word sequence (a stream, whose status line
    depends on it) is also woken when it joins the batch."""

    def __init__(self, spec: SequenceSpec, deadline: float | None, per_word: bool):
        self.spec = spec
        self.deadline = deadline
        self.per_word = per_word  # hand over each word at once (streams, stop strings), else all at the end
        self.cancelled = False
        self.submitted = time.perf_counter()
        self.admitted: float | None = None  # when it joined the batch
        self._channel: queue.SimpleQueue = queue.SimpleQueue()
        self._held: list = []
        # the engine's hand-over of each word: a builtin's bound method, no Python frame per word
        self.deliver: Callable[[SampledWord], None] = self._channel.put if per_word else self._held.append

    @property
    def queue_seconds(self) -> float:
        """How long it waited for a place in the batch (so far, if it has not joined yet)."""
        return (time.perf_counter() if self.admitted is None else self.admitted) - self.submitted

    # -- the engine's side
    def start(self) -> None:
        self.admitted = time.perf_counter()
        if self.per_word:
            self._channel.put(_STARTED)

    def finish(self, error: BaseException | None = None) -> None:
        """Hand over the words held and the end (or ``error``) in one item: the request thread wakes once."""
        self._channel.put([*self._held, _END if error is None else error])

    # -- the request thread's side
    def wait_started(self) -> None:
        """Block until a per-word sequence has joined the batch; raises its refusal (Overloaded)."""
        item = self._channel.get()
        if item is not _STARTED:
            raise item[-1]

    def __iter__(self) -> Iterator[SampledWord]:
        while True:
            item = self._channel.get()
            if type(item) is not list:  # one word of a per-word sequence
                yield item
                continue
            yield from item[:-1]  # the words held (``finish``), then the end or the error
            if item[-1] is not _END:
                raise item[-1]
            return

    def close(self) -> None:
        self.cancelled = True


class Engine:
    """One per worker process; the scheduler thread starts with the first request in the process
    (gunicorn forks the workers after building the app, and a thread does not survive a fork)."""

    def __init__(self, decoder: Decoder, max_batch: int, max_queue: int):
        self.decoder = decoder
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _start_in_this_process(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._waiting: deque[list[SequenceHandle]] = deque()  # requests, in order of arrival
        self._queued = 0  # sequences waiting
        self._active: list[SequenceHandle] = []
        threading.Thread(target=self._run, name="rnnlm-engine", daemon=True).start()

    def submit(self, specs: Sequence[SequenceSpec], deadline: float | None, per_word: bool) -> list[SequenceHandle]:
        """Queue one request's sequences; raises Overloaded if the queue has no room for them.
        ``per_word`` sequences are waited for until they have all joined the batch (Overloaded if
        they cannot start before ``deadline``); whole ones return at once, and their iteration
        raises that Overloaded instead of giving words."""
        with self._lock:
            if self._pid != os.getpid():
                self._start_in_this_process()
        handles = [SequenceHandle(spec, deadline, per_word) for spec in specs]
        with self._cond:
            held = len(self._active) + self._queued
            if held + len(handles) > self.max_batch + self.max_queue and held:
                raise Overloaded(f"{len(self._active)} sequences are running and {self._queued} waiting")
            self._waiting.append(handles)
            self._queued += len(handles)
            self._cond.notify()
        if per_word:
            for handle in handles:
                handle.wait_started()
        return handles

    def load(self) -> tuple[int, int]:
        """Sequences in the batch and sequences waiting, in this process."""
        if self._pid != os.getpid():
            return 0, 0
        with self._cond:
            return len(self._active), self._queued

    # ------------------------------------------------------------- the scheduler thread
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._active and not self._waiting:
                    self._cond.wait()
                self._admit()
            if self._active:
                self._step()

    def _admit(self) -> None:
        """Move whole waiting requests into the batch while it has room, in order of arrival, and
        refuse those still waiting at their deadline (the lock is held)."""
        while self._waiting:
            handles = self._waiting[0]
            if len(self._active) + len(handles) > self.max_batch and self._active:
                break
            self._waiting.popleft()
            self._queued -= len(handles)
            for handle in handles:
                self.decoder.add(handle, handle.spec)
                self._active.append(handle)
                handle.start()
        now = time.monotonic()
        for handles in [h for h in self._waiting if h[0].deadline is not None and now > h[0].deadline]:
            self._waiting.remove(handles)
            self._queued -= len(handles)
            refusal = Overloaded("the request could not start before its deadline")
            for handle in handles:
                handle.finish(refusal)

    def _step(self) -> None:
        try:
            words = self.decoder.step()
        except Exception as exc:  # a fault in one step fails the sequences in it, not the engine
            logger.exception("generation step failed")
            for handle in list(self._active):
                self._drop(handle, exc)
            return
        now = time.monotonic()
        for handle, word in words:
            assert isinstance(handle, SequenceHandle)
            if word is None or handle.cancelled:
                self._drop(handle, None)
            elif handle.deadline is not None and now > handle.deadline:
                self._drop(handle, SequenceTimeout())
            else:
                handle.deliver(word)

    def _drop(self, handle: SequenceHandle, error: BaseException | None) -> None:
        if handle not in self._active:  # a word and its end can come in one step
            return
        self.decoder.remove(handle)
        self._active.remove(handle)
        handle.finish(error)
