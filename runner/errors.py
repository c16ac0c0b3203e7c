"""The project's exceptions. Every message says what failed, on which input, and what to do."""

from __future__ import annotations


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
    """An entity method the local platform does not serve."""


class DataImportError(RunnerError, ValueError):
    """A file an importer cannot read; nothing of that import was stored."""


class MissingUserFunction(RunnerError, NotImplementedError):
    """An adapter lacks a user function that the operation needs."""


class EmptySubsetError(RunnerError, ValueError):
    """A model subset whose filter matches no item."""


class ArtifactError(RunnerError):
    """Model artifacts that cannot be saved or loaded."""


class PredictionError(RunnerError):
    """Some batches failed; the others were stored. ``failed`` maps item id to cause."""

    def __init__(self, operation: str, failed: dict[str, str], total: int):
        self.failed = dict(failed)
        lines = [f"  {item_id}: {cause}" for item_id, cause in list(self.failed.items())[:50]]
        if len(self.failed) > 50:
            lines.append(f"  ... and {len(self.failed) - 50} more")
        super().__init__(
            f"{operation} failed for {len(self.failed)} of {total} items; the results of the others were stored",
            where="failed item ids:\n" + "\n".join(lines),
            fix="fix the cause shown for each item and run again: a rerun replaces this model's earlier results",
        )
