"""The cyclic garbage collector around a run: paused while the run's libraries load (the runner's
modules, the adapter's module, the adapter's ``load``), and what they left frozen (out of its
reach), so the collector's passes scan only the objects the run itself makes.

- Importing torch, dtlpy and scikit-learn leaves about half a million long-lived objects. While they
  load, the collector's full passes rescan all of them every time the heap grows by a quarter: a
  fifth of the import time.
- Left in the collector's reach, the same objects are rescanned by every full pass during the job,
  including those of a library the job imports late (``torch.optim`` imports ``torch._dynamo`` on
  first use: 1.4 s with the heap in reach, 0.8 s with it frozen).
- At exit CPython collects every object it still tracks, about 0.8 s over that heap, paid by every
  run, every launcher worker and the basic launcher's process. Frozen objects are skipped (and
  ``__del__`` of objects alive at exit was never guaranteed).
- A long-lived process (a launcher worker, the basic launcher) runs many jobs: each job's garbage is
  collected when it ends, before what it keeps is frozen, so frozen garbage cannot pile up.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_jobs_open = 0  # job_heap scopes entered and not left: collection_paused freezes only inside one


@contextmanager
def collection_paused() -> Iterator[None]:
    """The collector off while libraries load; inside a ``job_heap``, what they left is then frozen.

    Outside a job (the Python API) only the pause: freezing is the process's owner's choice."""
    if not gc.isenabled():  # someone else turned it off: leave it so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if _jobs_open:
            gc.freeze()
        gc.enable()


@contextmanager
def job_heap() -> Iterator[None]:
    """Around one job of a process that may run more, or exit right after this one: what is alive
    when it starts is frozen; when it ends (even by raising) its garbage is collected and what it
    keeps is frozen too."""
    global _jobs_open
    gc.freeze()
    _jobs_open += 1
    try:
        yield
    finally:
        _jobs_open -= 1
        gc.collect()
        gc.freeze()


@contextmanager
def libraries_loading_in_job() -> Iterator[None]:
    """Around a user function that may import the adapter's libraries (``load``: torch is often
    imported there): inside a ``job_heap``, as ``collection_paused``; outside a job, nothing."""
    if not _jobs_open:
        yield
        return
    with collection_paused():
        yield
