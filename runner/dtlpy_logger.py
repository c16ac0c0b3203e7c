"""Keep dtlpy's import-time log set-up from running: it deletes the runner's files.

On import, dtlpy configures its logger unless the ``dtlpy`` logger already has a handler. That
set-up writes a DEBUG log file per process under ``$DATALOOP_PATH/logs`` and starts threads that
walk every folder under ``$DATALOOP_PATH`` and delete files not modified for 30 days: the local
platform's store (``local/``: its SQLite file and content-addressed blobs, which are never
rewritten), the Optuna studies and the model artifacts. The walk also costs every new process
(each launcher worker, each job) a pass over every file there, ``model_data/`` included.

The runner claims the logger before dtlpy is imported: level WARNING, records propagate to the root
logger (so dtlpy's warnings land in a run's log as any other library's), and one handler of its own
(``dl.verbose`` sets the level of ``handlers[0]``) that prints to stderr while the root logger has
no handler, as Python does for a library nobody configured.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings

from .paths import dataloop_path, default_local_root


class _StderrUntilConfigured(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            logging.lastResort.handle(record)


def claim_dtlpy_logger() -> None:
    logger = logging.getLogger("dtlpy")
    if "dtlpy" not in sys.modules:
        # dtlpy's import makes $DATALOOP_PATH by check-then-create: two jobs starting at once on a
        # fresh one (a parallel sweep) raced, and one failed with FileExistsError
        with contextlib.suppress(OSError):
            dataloop_path().mkdir(parents=True, exist_ok=True)
        if not logger.handlers:
            logger.addHandler(_StderrUntilConfigured())
            logger.setLevel(logging.WARNING)
        return
    store = default_local_root()
    if store.is_dir():  # too late: the clean-up threads started when dtlpy was imported
        warnings.warn(
            f"dtlpy was imported before runner: on import it deletes files under {store.parent} that have "
            f"not been modified for 30 days, the local platform's store ({store}) included. Import runner "
            "before dtlpy, or keep the store outside it (platform.root=<folder>, or LocalPlatform(<folder>)).",
            RuntimeWarning, stacklevel=3)
