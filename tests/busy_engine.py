"""An app's engine made to hold one request without advancing it, for tests of what happens when
there is no room: the batch (one place) is taken and there is no queue."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from models.batch_sampling import BatchSampler
from service.engine import Engine
from service.state import EXTENSION_KEY


class GatedDecoder(BatchSampler):
    """A BatchSampler whose steps wait until ``gate`` is set."""

    def __init__(self, sampler, gate: threading.Event):
        super().__init__(sampler)
        self.gate = gate

    def step(self):
        self.gate.wait()
        return super().step()


@contextmanager
def busy_engine(app: Flask, max_queue: int = 0) -> Iterator[Engine]:
    """Inside the block the app's only batch place is held by a /generate request that does not
    advance; after it, that request finishes and the app's own engine is back."""
    generator = app.extensions[EXTENSION_KEY].generator
    gate = threading.Event()
    own, generator.engine = generator.engine, Engine(GatedDecoder(generator.sampler, gate), 1, max_queue)
    holder = threading.Thread(target=lambda: app.test_client().post("/generate", json={}))
    holder.start()
    try:
        deadline = time.monotonic() + 10
        while generator.engine.load() != (1, 0):
            assert time.monotonic() < deadline, "the holding request never started"
            time.sleep(0.005)
        yield generator.engine
    finally:
        gate.set()
        holder.join(timeout=30)
        generator.engine = own
