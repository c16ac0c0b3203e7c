"""The project's exceptions. Every message says what failed, on which input, and what to do."""

from __future__ import annotations

import os
import re
import sys
import sysconfig
import traceback
from collections.abc import Collection


class RunnerError(Exception):
    """Base of every error the runner raises on purpose.

    ``what`` is the failure, ``where`` the input it concerns, ``fix`` what the user can do.
    """

    def __init__(self, what: str, where: str | None = None, fix: str | None = None):
        self.what, self.where, self.fix = what, where, fix
        parts = [what]
        if where:
            parts.append(f"  where: {where}")
        if fix:
            parts.append(f"  fix: {fix}")
        super().__init__("\n".join(parts))


class ConfigError(RunnerError, ValueError):
    """A configuration that cannot run; found before anything is written to the store."""


class FilterError(RunnerError, ValueError):
    """A DQL filter that cannot be translated."""


class NotFoundError(RunnerError, LookupError):
    """A record that the store does not hold."""


class AlreadyExistsError(RunnerError):
    """A record with that name exists already (another job may have just created it)."""


class UnsupportedOperation(RunnerError, NotImplementedError):
    """A dtlpy entity method the active platform does not serve."""

    def __init__(self, what: str, where: str | None = None, fix: str | None = None):
        if _called_from_dtlpy_wrapper():  # an adapter class used unbound: dtlpy's own wrapper is running
            fix = ("bind the adapter class first: runner.bind_adapter_class(MyAdapter)(model_entity=model) runs the "
                   "runner's wrapper functions (train_model, evaluate_model, ...) instead of dtlpy's, which need the "
                   "Dataloop servers" + (f"; else {fix}" if fix else ""))
        super().__init__(what, where, fix)


def _called_from_dtlpy_wrapper() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.replace(os.sep, "/").endswith("dtlpy/ml/base_model_adapter.py"):
            return True
        frame = frame.f_back
    return False


class DataImportError(RunnerError, ValueError):
    """A file an importer cannot read; nothing of that import was stored."""


class MissingUserFunction(RunnerError, NotImplementedError):
    """An adapter lacks a user function that the operation needs."""


class EmptySubsetError(RunnerError, ValueError):
    """A model subset whose filter matches no item."""


class ArtifactError(RunnerError):
    """Model artifacts that cannot be saved or loaded."""


class SaveWroteNothing(ArtifactError):
    """The adapter's ``save`` wrote no file: a mistake in its code, as an exception it raised would be
    (the CLI exits 1 for those; 2 is for a configuration stopped before anything is stored)."""

    exit_code = 1


class AdapterOutputError(RunnerError):
    """What the adapter's code returned is wrong (predictions with labels its model lacks, or of another
    type than its output type): a mistake in its code, so the CLI exits 1, as for an exception it raised."""

    exit_code = 1


class VectorsRefused(AdapterOutputError):
    """Feature vectors the store does not take: of another length than the feature set's, or holding
    NaN or infinite values (which would rank as nearest to nothing, or to everything)."""


class PredictionError(RunnerError):
    """Some batches failed; the others were stored. ``failed`` maps item id to cause; ``first`` is
    the first failure's (where it was raised, its traceback), which the CLI writes to the run's log.
    Raised by the adapter's code or data, not by the configuration: the CLI exits 1, as for any
    error raised inside the adapter."""

    exit_code = 1

    def __init__(self, operation: str, failed: dict[str, str], total: int,
                 first: tuple[str, str, str] | None = None):
        self.failed = dict(failed)
        self.traceback_text = first[1] if first else None
        lines = _by_cause(self.failed)
        if first and "\n" in first[2]:  # the causes above are its first line: the rest once, here
            lines.append("  the first failure in full: " + first[2].replace("\n", "\n    "))
        raised = f"; the first failure was raised at {first[0]}" if first else ""
        stored = "nothing was stored" if len(self.failed) >= total else "the results of the others were stored"
        super().__init__(
            f"{operation} failed for {len(self.failed)} of {total} items; {stored}{raised}",
            where="failed items, by cause:\n" + "\n".join(lines),
            fix="fix the causes shown and run again: a rerun replaces this model's earlier results (every failed "
                "id with its cause: the error's .failed; a command-line run's log lists them all)",
        )


    def every_failure(self) -> str:
        """Every failed item id and its cause, one per line (the message shows the first few of each cause)."""
        return "\n".join(f"{item_id}: {cause}" for item_id, cause in self.failed.items())


# what makes one item's message differ from another's with the same cause: a quoted absolute path (of
# the item's file), an entity id
_PER_ITEM = ((re.compile(r"""(['"])/[^'"]*\1"""), r"\1...\1"), (re.compile(r"\b[0-9a-f]{24}\b"), "<id>"),
             # a batch's own counts (the last batch is shorter; a shard's batches differ)
             (re.compile(r"\b\d+ of the batch's \d+\b"), "<n> of the batch's <m>"))


def _cause(message: str) -> str:
    """A failure's message with its item's own path and ids left out, so that the items one mistake
    fails group as one cause (the error's ``.failed`` keeps each message whole)."""
    for pattern, placeholder in _PER_ITEM:
        message = pattern.sub(placeholder, message)
    return message


def _by_cause(failed: dict[str, str], ids_per_cause: int = 10, causes: int = 20) -> list[str]:
    """Lines of ``cause (n items): id, id, ...``: a batch that fails fails all its items with one cause."""
    grouped: dict[str, list[str]] = {}
    for item_id, cause in failed.items():
        grouped.setdefault(_cause(cause), []).append(item_id)
    lines = []
    for cause, ids in list(grouped.items())[:causes]:
        more = f" and {len(ids) - ids_per_cause} more" if len(ids) > ids_per_cause else ""
        lines.append(f"    {cause} ({len(ids)} item{'s' if len(ids) > 1 else ''}): {', '.join(ids[:ids_per_cause])}{more}")
    if len(grouped) > causes:
        rest = sum(len(ids) for ids in list(grouped.values())[causes:])
        lines.append(f"    ... and {len(grouped) - causes} more causes, of {rest} items")
    return lines


_LIBRARY_DIRS = tuple({sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")})


# the runner's own files count as a library's: a KeyError its configuration mapping raises for the
# adapter's lookup is reported at the adapter's line
_RUNNER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def returned_wrongly(err: BaseException, defined_at: str) -> BaseException:
    """``err``, found by the runner in what a user function returned, to be reported at that function
    (``file:line in Class.function``) rather than at the runner's check."""
    if defined_at:
        err.defined_at = f"{defined_at} (what it returned)"
    return err


def raised_at(err: BaseException, prefer: Collection[str] = ()) -> str:
    """``file:line in function`` of the user function whose return ``err`` is about (``returned_wrongly``);
    else of the deepest frame of ``err`` in one of the ``prefer`` files (the adapter's own modules,
    wherever they are installed); else outside the runner, the installed libraries and the standard
    library (the adapter's line that called into scikit-learn, not scikit-learn's); else the runner's
    deepest; else the deepest frame."""
    if getattr(err, "defined_at", None):
        return err.defined_at
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return "(no traceback)"
    preferred = [f for f in frames if f.filename in prefer]
    not_library = [f for f in frames if not os.path.abspath(f.filename).startswith(_LIBRARY_DIRS)]
    own = [f for f in not_library if not os.path.abspath(f.filename).startswith(_RUNNER_DIR)]
    frame = (preferred or own or not_library or frames)[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}"


def one_line(err: BaseException) -> str:
    """One line per failed item: the message's first line (a runner error's where/fix lines, or a long
    library message, would repeat under every item; the first failure's whole text goes to the log)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}" + (" ..." if len(lines) > 1 else "")


class FailedElsewhere(Exception):
    """An item that failed in another process: its ``one_line`` cause and ``first_failure`` tuple,
    made there (the traceback does not travel), picklable whatever the original exception was."""

    def __init__(self, cause: str, first: tuple[str, str, str]):
        super().__init__(cause, first)
        self.cause, self.first = cause, first

    def __str__(self) -> str:
        return self.cause


def first_failure(err: BaseException, prefer: Collection[str] = ()) -> tuple[str, str, str]:
    """(where it was raised, its whole traceback, its whole message): what a report of many failures
    keeps of one."""
    return (raised_at(err, prefer), "".join(traceback.format_exception(err)),
            f"{type(err).__name__}: {str(err).strip()}")
