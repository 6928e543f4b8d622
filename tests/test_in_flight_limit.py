"""The in-flight limit is shared by processes forked after it is made, as gunicorn's workers are,
and a finished stream gives its slot back."""
from __future__ import annotations

import multiprocessing
import os
import signal
from dataclasses import replace

import pytest

from service.app import create_app
from service.concurrency import InFlightLimit
from service.state import EXTENSION_KEY
from tests.waiting import wait_for

fork = multiprocessing.get_context("fork")


def enter_and_wait(limit: InFlightLimit, entered, release) -> None:
    assert limit.try_enter()
    entered.set()
    release.wait(10)
    limit.leave()


def test_counts_are_shared_between_processes():
    limit = InFlightLimit(2)
    entered, release = fork.Event(), fork.Event()
    child = fork.Process(target=enter_and_wait, args=(limit, entered, release))
    child.start()
    try:
        assert entered.wait(10)
        assert limit.in_flight() == 1
        assert limit.try_enter()  # the second place
        assert not limit.try_enter()  # the child holds the first
        limit.leave()
        release.set()
        child.join(10)
        assert child.exitcode == 0 and limit.in_flight() == 0
    finally:
        release.set()
        child.join(10)


def test_a_dead_process_is_forgotten():
    limit = InFlightLimit(1)
    entered, never = fork.Event(), fork.Event()
    child = fork.Process(target=enter_and_wait, args=(limit, entered, never))
    child.start()
    assert entered.wait(10)
    os.kill(child.pid, signal.SIGKILL)  # dies holding its place, as a killed worker would
    child.join(10)
    assert not limit.try_enter()
    limit.forget_process(child.pid)  # what gunicorn's child_exit hook does
    assert limit.try_enter()
    limit.leave()


def test_leave_never_goes_below_zero():
    limit = InFlightLimit(1)
    limit.leave()
    assert limit.in_flight() == 0 and limit.try_enter() and limit.in_flight() == 1


def test_slots_of_dead_processes_are_reused():
    limit = InFlightLimit(5, slots=1)
    child = fork.Process(target=limit.try_enter)
    child.start()
    child.join(10)
    assert limit.in_flight() == 1  # the child exited without leaving, and nobody told the limit
    assert limit.try_enter()  # its slot, of a process that is gone, is taken over
    assert limit.in_flight() == 1
    with pytest.raises(RuntimeError):
        other = InFlightLimit(5, slots=0)
        other.try_enter()


@pytest.mark.parametrize("path, body", [("/generate_stream", {"inputs": "the"}),
                                        ("/v1/completions", {"model": "rnnlm", "stream": True})])
def test_a_stream_read_to_its_end_leaves_the_engine_before_it_is_closed(service_config, path, body):
    """A server or client that keeps a finished response open must not hold a place: with one
    place and no queue, the second stream is served although the first response was never closed."""
    client = create_app(replace(service_config, max_batch=1, max_queue=0)).test_client()
    first = client.post(path, json=body)
    assert first.status_code == 200 and b"data:" in first.get_data()  # read, not closed
    engine = client.application.extensions[EXTENSION_KEY].generator.engine
    # the response may end as soon as its last word is read, a moment before the engine's step
    # that drew it has dropped the sequence: the place must come free then, not at close
    wait_for(lambda: engine.load() == (0, 0), timeout=5.0, what="the engine to drop the finished sequence")
    assert client.post(path, json=body).status_code == 200
