"""The run's log file (Hydra's ``dlrun.log``) beside the console: what a run prints for a person to
read goes to the file too, and an error's whole traceback goes to the file alone."""

from __future__ import annotations

import logging


def to_log_file(level: int, message: str, *args, exc_info: BaseException | None = None) -> str | None:
    """Log to the job's log file only (the console gets its own form); returns its path."""
    logger = logging.getLogger("runner")
    record = logger.makeRecord(logger.name, level, __file__, 0, message, args,
                               (type(exc_info), exc_info, exc_info.__traceback__) if exc_info else None)
    path = None
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
            path = handler.baseFilename
    return path


def say(text: str) -> None:
    """Print ``text`` (a table, where the outputs went) and keep it in the log file too."""
    print(text)
    to_log_file(logging.INFO, "%s", text)
