"""``predict_dataset`` and ``embed_dataset`` over shards of a dataset on parallel workers.

The filter's listing is cut into contiguous page ranges, as Dataloop splits a dataset into several
executions: big ones first, then smaller and smaller. The cuts are fixed before any shard runs, as
keys of the listing (the local store's row ids), not as positions: a shard's predictions can change
which items the filter matches (``annotated``, a label), which would move every later position.
This process is one of the workers; the others are local processes, or Ray tasks when configured.
Each takes the next shard when it is free, so a worker that started late (a new process imports
its libraries first) or runs slower simply takes fewer shards, and the small shards at the end keep
the workers finishing together. A worker process opens the platform again, loads the model once, and
predicts (or embeds) its items with the same batch pipeline and the same store calls as a single
process, so the stored results are the same. The counts are summed and every failed item id, from
every shard, goes into one ``PredictionError``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
from collections import deque
from concurrent.futures import BrokenExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .batching import BatchResult, BatchRunner
from .configuration import is_whole_number
from .errors import ConfigError, PredictionError, first_failure
from .gc_control import job_heap
from .platform import Platform
from .prepare_processes import processes_possible
from .run_configuration import carried, carry_over

logger = logging.getLogger("runner.sharding")

BACKENDS = ("processes", "ray")
# pages per worker: small enough that the last shards are short, big enough that a page query
# (and a shard's set-up) stays a small part of its work
_PAGES_PER_WORKER = 32
# each shard takes this share, divided by the workers, of the pages not yet given out
_GUIDED_DIVISOR = 2


@dataclass(frozen=True)
class Sharding:
    """How ``predict_dataset`` and ``embed_dataset`` spread their items: ``workers`` shards (1: in this process) run as
    local ``processes`` or as ``ray`` tasks (a local Ray, or the cluster at ``ray_address``)."""

    workers: int = 1
    backend: str = "processes"
    ray_address: str | None = None

    def __post_init__(self):
        if not is_whole_number(self.workers, 1):  # true would count as 1
            raise ConfigError(f"workers must be a whole number >= 1, not {self.workers!r}",
                              where="sharding.workers", fix="use 1 (this process) or the number of workers")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown worker backend {self.backend!r}", where="sharding.backend",
                              fix=f"use one of {list(BACKENDS)}")


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs, picklable: the platform pickles as what reopens it."""

    platform: Platform
    adapter_class: type  # the user's class: a worker binds it again
    model_id: str
    dataset_id: str
    filters: dict | None
    pages: range  # which pages of the listing at planning time, for messages
    span: tuple  # (after, through): the shard's items are those between these cuts (Platform.listing_cuts)
    page_size: int
    batch_size: int
    prepare_workers: int
    artifacts_path: str
    kwargs: dict  # of the user function (predict or embed)
    operation: str = "predict"  # or "embed"
    this_run: dict | None = None  # the configuration this run changed (runner/run_configuration.py)


def plan_shards(count: int, workers: int, max_page_size: int = 500) -> tuple[int, list[range]]:
    """``(page_size, page ranges)``: ``count`` items in pages of at most ``max_page_size``, cut into
    contiguous ranges that shrink as they go (guided self-scheduling). Each takes about
    1 / (``_GUIDED_DIVISOR`` x workers) of the pages left, down to one page: the workers start on
    big shards and end on small ones, so the last one to finish keeps the others waiting little."""
    if count <= 0:
        return max_page_size, []
    page_size = max(1, min(max_page_size, math.ceil(count / (workers * _PAGES_PER_WORKER))))
    n_pages = math.ceil(count / page_size)
    shards, start = [], 0
    while start < n_pages:
        size = math.ceil((n_pages - start) / (_GUIDED_DIVISOR * workers))
        shards.append(range(start, start + size))
        start += size
    return page_size, shards


# operation -> (the adapter method that runs a shard's pages, the wrapper function errors name, verb)
OPERATIONS = {"predict": ("predict_pages", "predict_dataset", "predicting"),
              "embed": ("embed_pages", "embed_dataset", "embedding")}


def run_in_shards(adapter, operation: str, dataset, filters: dict | None, batch_size: int, sharding: Sharding,
                  kwargs: dict | None = None) -> int:
    """Predict (or embed: ``operation``) the matching items on ``sharding.workers`` workers (this
    process and ``workers - 1`` others); returns the count processed."""
    run_pages, wrapper, verb = OPERATIONS[operation]
    platform = adapter.platform
    count = platform.count_items(dataset, filters)
    page_size, shards = plan_shards(count, sharding.workers)
    if not shards:
        return 0
    kwargs = dict(kwargs or {})
    cls = getattr(type(adapter), "__wrapped_adapter__", type(adapter))
    prepare_workers = max(1, (os.cpu_count() or 1) // sharding.workers)
    this_run = carried(adapter.model_entity)
    # cut once, now: a position looked up as a shard starts would count the items earlier shards
    # predicted out of (or into) the filter, and skip (or repeat) items
    cuts = platform.listing_cuts(dataset, filters, [pages.start * page_size for pages in shards[1:]])
    spans = zip([None, *cuts], [*cuts, None], strict=True)
    tasks = [ShardTask(platform, cls, adapter.model_entity.id, dataset.id, filters, pages, span, page_size,
                       batch_size, prepare_workers, str(adapter.artifacts_path or ""), kwargs, operation, this_run)
             for pages, span in zip(shards, spans, strict=True)]
    logger.info("%s %d items: %d shards (pages of %d) on this process and %d %s", verb, count, len(tasks), page_size,
                sharding.workers - 1, "Ray worker(s)" if sharding.backend == "ray" else "worker process(es)")

    def here(task: ShardTask) -> BatchResult:
        return getattr(adapter, run_pages)(dataset, filters, batch_size, task.span, page_size, **kwargs)

    # this process's share of the cores, like each worker's: more prepare threads would only take
    # turns at the interpreter lock with the model and the writer
    own_runner, adapter._batch_runner = adapter._batch_runner, BatchRunner(prepare_workers)
    try:
        with _remote_workers(sharding) as submit:
            outcomes = _dispatch(tasks, here, submit, sharding.workers - 1)
    finally:
        adapter.close_pools()
        adapter._batch_runner = own_runner

    processed, failed, first = 0, {}, None
    for task, outcome in zip(tasks, outcomes, strict=True):
        if isinstance(outcome, BaseException):  # the whole shard failed (e.g. the model did not load)
            cause = f"shard of pages {task.pages.start}-{task.pages.stop - 1}: {type(outcome).__name__}: {outcome}"
            for page in platform.iter_items(dataset, filters, page_size, task.span):  # the items it was given
                failed.update({item.id: cause for item in page if item.type == "file"})
            first = first or first_failure(outcome)
            continue
        processed += outcome.processed
        failed.update(outcome.failed)
        first = first or outcome.first
    if failed:
        raise PredictionError(wrapper, failed, processed + len(failed), first)
    return processed


def _dispatch(tasks: list, here, submit, remote_slots: int) -> list:
    """Run ``tasks`` on this process (``here(task)``) and on ``remote_slots`` remote workers
    (``submit(task)`` -> a concurrent Future), each taking the next task when it is free.
    Returns one outcome per task: its result, or the exception that failed it."""
    queue = deque(enumerate(tasks))
    outcomes: list = [None] * len(tasks)
    idle = threading.Condition()
    remote = [0]  # tasks taken by remote workers and not finished

    def feed() -> None:
        with idle:
            if not queue:
                return
            index, task = queue.popleft()
            remote[0] += 1
        try:
            future = submit(task)
        except Exception as err:  # noqa: BLE001 - e.g. a broken pool: this process takes the task back
            logger.warning("a worker could not take a shard (%s: %s); this process runs it", type(err).__name__, err)
            with idle:
                queue.appendleft((index, task))
                remote[0] -= 1
                idle.notify_all()
            return
        future.add_done_callback(lambda f: finish(index, task, _outcome(f.result)))

    def finish(index: int, task, outcome) -> None:
        if isinstance(outcome, BrokenExecutor):  # the worker died: this process takes its task back
            logger.warning("a worker stopped (%s); this process runs its shards", outcome)
            with idle:
                queue.appendleft((index, task))
                remote[0] -= 1
                idle.notify_all()
            return
        outcomes[index] = outcome
        feed()  # the worker's next task is taken before this one counts as done
        with idle:
            remote[0] -= 1
            idle.notify_all()

    for _ in range(remote_slots if submit is not None else 0):
        feed()
    while True:
        with idle:
            idle.wait_for(lambda: queue or remote[0] == 0)
            if not queue:
                break
            index, task = queue.popleft()
        outcomes[index] = _outcome(lambda task=task: here(task))
    return outcomes


def run_shard(task: ShardTask) -> BatchResult:
    """In a worker: predict (or embed) the task's span of the listing; returns what was done and what
    failed (no outputs: they are stored).

    As a CLI job does (runner/gc_control.py): the collector paused while the adapter's ``load``
    imports its libraries (``load_from_model`` does that inside a job), and the heap frozen between
    shards, so the pool's shutdown does not wait for the worker's exit to scan it."""
    with job_heap():
        adapter = loaded_adapter(task.platform, task.adapter_class, task.model_id, task.artifacts_path,
                                 task.prepare_workers, task.this_run)
        dataset = adapter.platform.get_dataset(task.dataset_id)
        run_pages = getattr(adapter, OPERATIONS[task.operation][0])
        return run_pages(dataset, task.filters, task.batch_size, task.span, task.page_size, **task.kwargs)


# one loaded adapter per worker process and model: a process that runs several shards loads once
_LOADED: dict[tuple, Any] = {}


def loaded_adapter(platform: Platform, adapter_class: type, model_id: str, artifacts_path: str,
                   prepare_workers: int = 1, this_run: dict | None = None):
    """In a worker process: the adapter of ``model_id``, bound and loaded once per process (from the
    parent's copy of the artifacts when this machine has it; a remote worker fetches its own), with
    the configuration the run changed (``this_run``)."""
    from .adapter import bind_adapter_class, new_adapter

    key = (adapter_class, model_id, repr(platform), json.dumps(this_run, sort_keys=True, default=str))
    adapter = _LOADED.get(key)
    if adapter is None:
        model = platform.get_model(model_id=model_id)
        carry_over(model, this_run)
        adapter = new_adapter(bind_adapter_class(adapter_class), model)
        adapter.platform = platform
        adapter._batch_runner = BatchRunner(prepare_workers)
        path = Path(artifacts_path) if artifacts_path else None
        if path is None or not path.is_dir():
            path = Path(tempfile.mkdtemp(prefix=f"{model.name}-"))
        adapter.load_from_model(model_entity=model, local_path=path, overwrite=False)
        _LOADED[key] = adapter
    return adapter


@contextmanager
def _remote_workers(sharding: Sharding):
    """``submit(task) -> Future`` on the configured backend, torn down on exit."""
    if sharding.workers < 2:
        yield None
        return
    if sharding.backend == "ray":
        try:
            import ray
        except ImportError:
            raise ConfigError("sharding.backend=ray needs Ray, which is not installed", where="sharding.backend",
                              fix='pip install -e ".[ray]", or use sharding.backend=processes') from None
        if not ray.is_initialized():  # inside a Ray launcher job it already is: tasks join that cluster
            ray.init(address=sharding.ray_address, include_dashboard=False, ignore_reinit_error=True)
        remote = ray.remote(num_cpus=1)(run_shard)
        yield lambda task: remote.remote(task).future()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if not processes_possible():
        # a job of a process launcher (joblib): the sweep already runs jobs side by side, and a pool
        # started from a pool worker cannot set up its own children; this process takes every shard
        logger.warning("sharding.workers=%d in a launcher's worker process: running every shard in this process "
                       "(the launcher already runs jobs in parallel; use sharding.backend=ray to nest)",
                       sharding.workers)
        yield None
        return
    # spawn: this process holds threads and SQLite connections that a fork would copy mid-use
    with ProcessPoolExecutor(sharding.workers - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield lambda task: pool.submit(run_shard, task)


def _outcome(get):
    try:
        return get()
    except Exception as err:  # noqa: BLE001 - reported per item by the caller
        return getattr(err, "cause", None) or err
