"""The model version that ran a trial of a stored Optuna study. A trial records its parameters and
value, not the version its job trained; the job's run folder (recorded on the version as
``metadata.user.runner.run``) holds both, so a version whose run completed with the trial's value and
parameters, in a sweep's folder, is the one (a rerun of a trial, in outputs/, is not)."""

from __future__ import annotations

from .reporting import runner_metadata
from .studies import FinishedJob, finished_job, ran_trial


class TrialVersions:
    """Matches trials to the versions of a local platform, reading each version's run folder once."""

    def __init__(self, records: list[dict]):
        self._runs: list[tuple[str, FinishedJob]] = []
        for record in reversed(records):  # the newest first
            folder = runner_metadata(record).get("run")
            job = finished_job(folder) if folder else None
            if job is not None and job.swept:  # a trial's own job; a rerun of it (hydra.mode=RUN) ran no trial
                self._runs.append((record["name"], job))

    @classmethod
    def at(cls, root: str, project: str) -> TrialVersions | None:
        """Those of the local platform at ``root``; None when it cannot be opened (the caller goes on
        without names)."""
        from .paths import holds_store
        from .platform.local import LocalPlatform

        if not holds_store(root):
            return None
        try:
            platform = LocalPlatform(root, project=project, create_project=False)
            return cls(platform.store.list_models(platform.project.id))
        except Exception:  # noqa: BLE001 - a missing or unreadable store: no names, not an error
            return None

    def __call__(self, trial) -> str | None:
        return next((name for name, job in self._runs if ran_trial(job, trial)), None)
