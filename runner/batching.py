"""Runs items through prepare → infer → store in batches, overlapping the three stages.

While batch *k* is in ``infer`` (the caller's thread), the items of batch *k+1* are being prepared
on a thread pool (one chunk of the batch per thread) and batch *k-1* is being stored on a single
writer thread; encoding a batch for storage (Python work, under the interpreter lock) happens on
the caller's thread right after ``infer``, so the writer mostly waits on I/O. A batch that fails at
any stage is recorded (item id → cause) and the run goes on; memory holds a bounded number of
batches whatever the number of items.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .allocator import keep_freed_memory
from .errors import FailedElsewhere, first_failure, one_line, returned_wrongly

logger = logging.getLogger(__name__)

_PROCESS_BATCHES_AHEAD = 3
_STORE_BACKLOG = 2  # batches waiting for the writer before the pipeline waits for it
# While a pipeline runs, a thread that wants the interpreter lock back (the model's, returning from a
# numpy or torch call) waits at most this long for a Python-bound thread (prepare, store) to hand it
# over, instead of CPython's 5 ms: the model thread re-takes the lock many times per batch.
_SWITCH_INTERVAL = 0.0005
_switching_lock = threading.Lock()
_switching_users = 0
_switching_saved = 0.0


@contextmanager
def responsive_switching():
    """Lower ``sys.setswitchinterval`` to ``_SWITCH_INTERVAL`` while at least one pipeline runs in this
    process; the previous value comes back when the last one ends."""
    global _switching_users, _switching_saved
    with _switching_lock:
        if _switching_users == 0:
            _switching_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switching_saved, _SWITCH_INTERVAL))
        _switching_users += 1
    try:
        yield
    finally:
        with _switching_lock:
            _switching_users -= 1
            if _switching_users == 0:
                sys.setswitchinterval(_switching_saved)


@dataclass
class BatchResult:
    processed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    outputs: list[tuple[Sequence[Any], Sequence[Any]]] = field(default_factory=list)
    first: tuple[str, str, str] | None = None  # the first failure: see errors.first_failure
    own_files: tuple[str, ...] = ()  # the adapter's source files: where a failure is said to be raised

    def fail(self, items: Sequence, err: BaseException, stage: str = "") -> None:
        elsewhere = isinstance(err, FailedElsewhere)
        cause = err.cause if elsewhere else one_line(err)
        self.failed.update({item.id: f"{stage}{cause}" for item in items})
        if self.first is None:
            self.first = err.first if elsewhere else first_failure(err, self.own_files)


def batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _split(batch: list, parts: int) -> list[list]:
    """``batch`` cut into at most ``parts`` contiguous chunks whose sizes differ by one at most."""
    parts = max(1, min(parts, len(batch)))
    bounds = [round(i * len(batch) / parts) for i in range(parts + 1)]
    return [batch[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _outcomes(chunk: list, future: Future) -> list[tuple[Any, Exception | None]]:
    """A prepared chunk's outcomes; if the whole chunk failed (a worker process died), each item's."""
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 - reported per item by the caller
        return [(None, err)] * len(chunk)


def _prepare_chunk(prepare: Callable[[Any], Any], chunk: list) -> list[tuple[Any, Exception | None]]:
    """``(input, None)`` or ``(None, error)`` per item: one item's failure leaves the others prepared."""
    out = []
    for item in chunk:
        try:
            out.append((prepare(item), None))
        except Exception as err:  # noqa: BLE001 - reported per item by the caller
            out.append((None, err))
    return out


class BatchRunner:
    """Owns the thread pools (made once, reused across calls) of one adapter."""

    def __init__(self, prepare_workers: int = 4, process_prepare: Callable[[int], Any] | None = None):
        # more workers than cores only adds hand-offs of the interpreter lock (or of the cores)
        self.prepare_workers = max(1, min(int(prepare_workers), os.cpu_count() or 1))
        # process_prepare(workers) -> an object with submit(chunk) -> Future and shutdown(wait): prepare on
        # processes (runner/prepare_processes.py) instead of this runner's threads
        self._process_prepare = process_prepare
        # batches given to the prepare workers ahead of the one inferring: a process's result comes back
        # through a pipe and a feeder thread, so with one batch ahead a worker would idle for that trip
        self._ahead = 1 if process_prepare is None else _PROCESS_BATCHES_AHEAD
        self._processes = None
        self._prepare_pool: ThreadPoolExecutor | None = None
        self._store_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pools(self) -> tuple[Callable[[list], Future], ThreadPoolExecutor]:
        """``(submit a chunk to prepare -> Future, the writer pool)``."""
        with self._lock:
            if self._store_pool is None:
                self._store_pool = ThreadPoolExecutor(1, thread_name_prefix="store")
                if self._process_prepare is not None:
                    self._processes = self._process_prepare(self.prepare_workers)
                else:
                    self._prepare_pool = ThreadPoolExecutor(self.prepare_workers, thread_name_prefix="prepare")
            return self._submit_chunk, self._store_pool

    def _submit_chunk(self, prepare: Callable[[Any], Any], chunk: list) -> Future:
        if self._processes is not None:
            return self._processes.submit(chunk)
        return self._prepare_pool.submit(_prepare_chunk, prepare, chunk)

    def close(self, failed: bool = False) -> None:
        """End the pools. ``failed``: a step raised, so the batches prepared ahead are dropped, not
        prepared for nothing; the writes already handed to the writer are finished either way."""
        with self._lock:
            for pool in (self._prepare_pool, self._processes):
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=failed)
            if self._store_pool is not None:
                self._store_pool.shutdown(wait=True)
            self._prepare_pool = self._store_pool = self._processes = None

    def run(self, items: Iterable, batch_size: int, prepare: Callable[[Any], Any],
            infer: Callable[[list], Sequence[Any]], store: Callable[[list, Any], Any] | None,
            keep_outputs: bool, encode: Callable[[list, Sequence[Any]], Any] | None = None,
            name: str = "predict", own_files: tuple[str, ...] = (), defined_at: str = "",
            prepared_at: str = "") -> BatchResult:
        """``infer`` gets the prepared inputs of a batch and returns one output per item;
        ``encode(items, outputs)``, when given, runs right after it on the caller's thread (the
        CPU-bound part of storing); ``store(items, encoded or outputs)`` runs on the writer thread and
        its return replaces the outputs kept. ``defined_at`` (``file:line in Class.function``) is where
        an output of the wrong kind or count is reported: the check is here, the mistake in ``infer``;
        ``prepared_at`` likewise where a ``None`` from ``prepare`` is."""
        keep_freed_memory()
        with responsive_switching():
            return self._run(items, batch_size, prepare, infer, store, keep_outputs, encode, name, own_files,
                             defined_at, prepared_at)

    def _run(self, items, batch_size, prepare, infer, store, keep_outputs, encode, name, own_files,
             defined_at, prepared_at) -> BatchResult:
        submit_chunk, store_pool = self._pools()
        result = BatchResult(own_files=own_files)
        pending_stores: deque[tuple[list, Future]] = deque()

        def submit(batch: list) -> tuple[list, list[tuple[list, Future]]]:
            # one task per worker, not per item: each hand-off between threads costs a trip through
            # the interpreter lock, which the model thread is waiting for
            return batch, [(chunk, submit_chunk(prepare, chunk)) for chunk in _split(batch, self.prepare_workers)]

        def finish_store(batch: list, future: Future) -> None:
            try:
                stored = future.result()
            except Exception as err:  # noqa: BLE001 - reported per item at the end
                logger.error("storing a batch failed: %s", one_line(err))
                result.fail(batch, err)
                return
            result.processed += len(batch)
            if keep_outputs:
                result.outputs.append((batch, stored))

        batches = batched(items, batch_size)
        upcoming: deque[tuple[list, list[tuple[list, Future]]]] = deque()

        def top_up() -> None:  # the next batches are prepared while this one infers
            while len(upcoming) < self._ahead:
                following = next(batches, None)
                if following is None:
                    return
                upcoming.append(submit(following))

        top_up()
        while upcoming:
            batch, futures = upcoming.popleft()
            top_up()

            ready_items, inputs = [], []
            prepared = (outcome for chunk, future in futures for outcome in _outcomes(chunk, future))
            for item, (value, err) in zip(batch, prepared, strict=True):
                if err is None and value is None:
                    # a None among the batch's inputs would fail the whole batch in np.stack or torch.stack,
                    # with a message that names neither the item nor prepare_item_func
                    result.fail([item], returned_wrongly(TypeError(
                        f"prepare_item_func returned None for item {item.id} ({prepared_at}): it must return the "
                        f"item's input to {name}; raise an exception to fail an item"), prepared_at))
                elif err is None:
                    inputs.append(value)
                    ready_items.append(item)
                else:
                    result.fail([item], err, "prepare_item_func: ")
            if not ready_items:
                continue
            try:
                outputs = infer(inputs)
                if isinstance(outputs, (str, bytes, dict)) or not isinstance(outputs, Iterable):
                    raise returned_wrongly(TypeError(
                        f"{name} returned {type(outputs).__name__}; it must return a list with one result per item "
                        "of the batch, in order"), defined_at)
                outputs = list(outputs)
                if len(outputs) != len(ready_items):
                    raise returned_wrongly(ValueError(
                        f"{name} returned {len(outputs)} results for a batch of {len(ready_items)} items; it must "
                        "return one per item, in order"), defined_at)
                if encode is not None and store is not None:
                    outputs = encode(ready_items, outputs)
            except Exception as err:  # noqa: BLE001
                logger.error("a batch of %d items failed: %s", len(ready_items), one_line(err))
                result.fail(ready_items, err)
                continue
            if store is None:
                result.processed += len(ready_items)
                if keep_outputs:
                    result.outputs.append((ready_items, outputs))
                continue
            pending_stores.append((ready_items, store_pool.submit(store, ready_items, outputs)))
            while len(pending_stores) > _STORE_BACKLOG:
                finish_store(*pending_stores.popleft())
        while pending_stores:
            finish_store(*pending_stores.popleft())
        return result
