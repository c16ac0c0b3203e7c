"""``prepare_item_func`` on worker processes (``configuration.prepare_in: processes``).

Prepare threads share the interpreter lock with the model's thread: a ``prepare_item_func`` that runs
Python code (rather than long C calls that release the lock) takes turns with ``predict`` instead of
running beside it. Worker processes have locks of their own. Each builds the adapter once, as a
shard worker does (the class bound again, the model loaded from its artifacts), so
``prepare_item_func`` sees what ``load`` set up. Items go to the workers as their stored JSON and the
prepared inputs come back pickled; a failure comes back as one line and its place in the adapter,
as it would from a thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, FailedElsewhere, first_failure, one_line
from .platform import Platform
from .run_configuration import carried

logger = logging.getLogger(__name__)

PREPARE_IN = ("threads", "processes")


@dataclass(frozen=True)
class WorkerSetup:
    platform: Platform  # pickles as what reopens it
    adapter_class: type
    model_id: str
    artifacts_path: str
    this_run: dict | None = None  # the configuration the run changed (runner/run_configuration.py)


def processes_possible() -> bool:
    """False in a worker of a process pool (a launcher's job, a shard): its children could not be
    set up, and the pool it is part of already uses the cores."""
    return multiprocessing.parent_process() is None


class ProcessPrepare:
    """``submit(chunk) -> Future`` of ``[(input, None) | (None, error)]`` per item, on ``workers``
    spawned processes (a fork would copy this process's threads and SQLite connections mid-use)."""

    def __init__(self, workers: int, adapter):
        self._platform = adapter.platform
        cls = getattr(type(adapter), "__wrapped_adapter__", type(adapter))
        problem = None
        main_file = getattr(sys.modules["__main__"], "__file__", None)  # python - says "<stdin>"
        if cls.__module__ == "__main__" and not (main_file and os.path.isfile(main_file)):
            problem = "it is defined in an interactive session (python -c, a notebook, standard input)"
        else:
            try:
                pickle.dumps(cls)
            except (pickle.PicklingError, AttributeError, TypeError) as err:
                problem = str(err)
        if problem:
            raise ConfigError(f"prepare_in=processes needs an adapter class a worker process can import; "
                              f"{cls.__module__}.{cls.__qualname__} is not: {problem}",
                              where=f"model {adapter.model_entity.name!r} configuration.prepare_in",
                              fix="define the class at the top level of a module (a .py file), or use prepare_in: "
                                  "threads")
        setup = WorkerSetup(self._platform, cls, adapter.model_entity.id, str(adapter.artifacts_path or ""),
                            carried(adapter.model_entity))
        logger.info("prepare_item_func on %d worker process%s (prepare_in: processes)", workers,
                    "es" if workers > 1 else "")
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_set_up_worker, initargs=(setup,))

    def submit(self, chunk: list) -> Future:
        explained: Future = Future()
        try:
            future = self._pool.submit(_prepare_chunk_in_worker, [self._platform.item_json(item) for item in chunk])
        except Exception as err:  # noqa: BLE001 - e.g. a worker died: the chunk's items fail, the run goes on
            explained.set_exception(_explained(err))
            return explained

        def done(f: Future) -> None:
            err = f.exception()
            if err is None:
                explained.set_result(f.result())
            else:
                explained.set_exception(_explained(err))
        future.add_done_callback(done)
        return explained

    def shutdown(self, wait: bool = True, cancel_futures: bool = True) -> None:  # noqa: ARG002 - always cancels
        self._pool.shutdown(wait=wait, cancel_futures=True)


def _explained(err: BaseException) -> FailedElsewhere:
    """What failed a whole chunk, said so the author can act on it: the worker process ended, or what
    ``prepare_item_func`` returned could not travel back (the worker catches everything else per item)."""
    if isinstance(err, BrokenProcessPool):
        cause = ("a prepare worker process ended abruptly (killed, out of memory, a crash in a C library, os._exit, "
                 "or a script that runs the adapter at its top level instead of under if __name__ == '__main__':, "
                 "which each worker process runs again as it starts)")
        return FailedElsewhere(cause, ("a prepare worker process", "", cause))
    cause = (f"what prepare_item_func returned could not be sent back from its worker process ({one_line(err)}); "
             "with prepare_in: processes it must return values that pickle (arrays, tensors, strings, numbers)")
    return FailedElsewhere(cause, ("a prepare worker process, sending its results", "", cause))


_SETUP: WorkerSetup | None = None
# (the loaded adapter, its own source files), or why the model did not load: made once per worker, so
# a model that does not load is not loaded again for every chunk
_WORKER: tuple[Any, tuple[str, ...]] | FailedElsewhere | None = None


def _set_up_worker(setup: WorkerSetup) -> None:
    global _SETUP
    _SETUP = setup  # unpickled once per worker: the platform opens once


def _worker() -> tuple[Any, tuple[str, ...]] | FailedElsewhere:
    from .sharding import loaded_adapter

    global _WORKER
    if _WORKER is None:
        try:
            adapter = loaded_adapter(_SETUP.platform, _SETUP.adapter_class, _SETUP.model_id, _SETUP.artifacts_path,
                                     this_run=_SETUP.this_run)
            _WORKER = adapter, adapter._own_files()
        except Exception as err:  # noqa: BLE001 - every item fails with the cause
            _WORKER = FailedElsewhere(f"the prepare worker could not load the model: {one_line(err)}",
                                      first_failure(err))
    return _WORKER


def _prepare_chunk_in_worker(item_jsons: list[dict]) -> list[tuple[Any, Exception | None]]:
    worker = _worker()
    if isinstance(worker, FailedElsewhere):
        return [(None, worker)] * len(item_jsons)
    adapter, own_files = worker
    out = []
    for item_json in item_jsons:
        try:
            out.append((adapter.prepare_item_func(_SETUP.platform.item_entity(item_json)), None))
        except Exception as err:  # noqa: BLE001 - reported per item by the caller
            out.append((None, FailedElsewhere(one_line(err), first_failure(err, own_files))))
    return out
