"""The cyclic garbage collector around a run: paused while the run's libraries load, and the objects
a run leaves behind frozen (out of its reach) until the next run in the same process starts.

- Importing torch, dtlpy and scikit-learn leaves about half a million long-lived objects. While they
  load, the collector's full passes rescan all of them every time the heap grows by a quarter: a
  fifth of the import time.
- At exit CPython collects every object it still tracks, about 0.8 s over that heap, paid by every
  run, every launcher worker and the basic launcher's process. Frozen objects are skipped (and
  ``__del__`` of objects alive at exit was never guaranteed).
- A long-lived process (a launcher worker, the basic launcher) runs many jobs: the next run thaws
  the heap first, so what one job left is collected as before and frozen objects cannot pile up.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    if not gc.isenabled():  # someone else turned it off: leave it so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def job_heap() -> Iterator[None]:
    """Around one job of a process that may run more jobs, or exit right after this one: the heap
    the last job froze is thawed first, and frozen again when this one ends."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.freeze()
