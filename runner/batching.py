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
from .errors import first_failure

logger = logging.getLogger(__name__)

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
        self.failed.update({item.id: f"{stage}{_cause(err)}" for item in items})
        if self.first is None:
            self.first = first_failure(err, self.own_files)


def batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _split(batch: list, parts: int) -> list[list]:
    """``batch`` cut into at most ``parts`` contiguous chunks whose sizes differ by one at most."""
    parts = max(1, min(parts, len(batch)))
    bounds = [round(i * len(batch) / parts) for i in range(parts + 1)]
    return [batch[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _prepare_chunk(prepare: Callable[[Any], Any], chunk: list) -> list[tuple[Any, Exception | None]]:
    """``(input, None)`` or ``(None, error)`` per item: one item's failure leaves the others prepared."""
    out = []
    for item in chunk:
        try:
            out.append((prepare(item), None))
        except Exception as err:  # noqa: BLE001 - reported per item by the caller
            out.append((None, err))
    return out


def _cause(err: BaseException) -> str:
    """One line per failed item: the message's first line (a runner error's where/fix lines, or a long
    library message, would repeat under every item; the first failure's whole text goes to the log)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}" + (" ..." if len(lines) > 1 else "")


class BatchRunner:
    """Owns the thread pools (made once, reused across calls) of one adapter."""

    def __init__(self, prepare_workers: int = 4):
        # more threads than cores only adds hand-offs of the interpreter lock
        self.prepare_workers = max(1, min(int(prepare_workers), os.cpu_count() or 1))
        self._prepare_pool: ThreadPoolExecutor | None = None
        self._store_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pools(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
        with self._lock:
            if self._prepare_pool is None:
                self._prepare_pool = ThreadPoolExecutor(self.prepare_workers, thread_name_prefix="prepare")
                self._store_pool = ThreadPoolExecutor(1, thread_name_prefix="store")
            return self._prepare_pool, self._store_pool

    def close(self) -> None:
        with self._lock:
            for pool in (self._prepare_pool, self._store_pool):
                if pool is not None:
                    pool.shutdown(wait=True)
            self._prepare_pool = self._store_pool = None

    def run(self, items: Iterable, batch_size: int, prepare: Callable[[Any], Any],
            infer: Callable[[list], Sequence[Any]], store: Callable[[list, Any], Any] | None,
            keep_outputs: bool, encode: Callable[[list, Sequence[Any]], Any] | None = None,
            name: str = "predict", own_files: tuple[str, ...] = ()) -> BatchResult:
        """``infer`` gets the prepared inputs of a batch and returns one output per item;
        ``encode(items, outputs)``, when given, runs right after it on the caller's thread (the
        CPU-bound part of storing); ``store(items, encoded or outputs)`` runs on the writer thread and
        its return replaces the outputs kept."""
        keep_freed_memory()
        with responsive_switching():
            return self._run(items, batch_size, prepare, infer, store, keep_outputs, encode, name, own_files)

    def _run(self, items, batch_size, prepare, infer, store, keep_outputs, encode, name, own_files) -> BatchResult:
        prepare_pool, store_pool = self._pools()
        result = BatchResult(own_files=own_files)
        pending_stores: deque[tuple[list, Future]] = deque()

        def submit(batch: list) -> tuple[list, list[Future]]:
            # one task per thread, not per item: each hand-off between threads costs a trip through
            # the interpreter lock, which the model thread is waiting for
            return batch, [prepare_pool.submit(_prepare_chunk, prepare, chunk)
                           for chunk in _split(batch, self.prepare_workers)]

        def finish_store(batch: list, future: Future) -> None:
            try:
                stored = future.result()
            except Exception as err:  # noqa: BLE001 - reported per item at the end
                logger.error("storing a batch failed: %s", _cause(err))
                result.fail(batch, err)
                return
            result.processed += len(batch)
            if keep_outputs:
                result.outputs.append((batch, stored))

        batches = batched(items, batch_size)
        current = next(batches, None)
        upcoming = submit(current) if current is not None else None
        while upcoming is not None:
            batch, futures = upcoming
            following = next(batches, None)
            upcoming = submit(following) if following is not None else None  # prepared while this one infers

            ready_items, inputs = [], []
            prepared = (outcome for future in futures for outcome in future.result())
            for item, (value, err) in zip(batch, prepared, strict=True):
                if err is None:
                    inputs.append(value)
                    ready_items.append(item)
                else:
                    result.fail([item], err, "prepare_item_func: ")
            if not ready_items:
                continue
            try:
                outputs = infer(inputs)
                if isinstance(outputs, (str, bytes, dict)) or not isinstance(outputs, Iterable):
                    raise TypeError(f"{name} returned {type(outputs).__name__}; it must return a list with one "
                                    f"result per item of the batch, in order")
                outputs = list(outputs)
                if len(outputs) != len(ready_items):
                    raise ValueError(f"{name} returned {len(outputs)} results for a batch of {len(ready_items)} "
                                     f"items; it must return one per item, in order")
                if encode is not None and store is not None:
                    outputs = encode(ready_items, outputs)
            except Exception as err:  # noqa: BLE001
                logger.error("a batch of %d items failed: %s", len(ready_items), _cause(err))
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
