"""Seeds for resumable Optuna studies.

A seeded sampler restarts its random stream in every process, so a second invocation of a stored
study would propose the first invocation's startup trials again. Seeding it with the study's trial
count as well (``seed: ${study_seed:${seed},<storage>,<study name>}``) keeps a resumed study
reproducible without repeating it.
"""

from __future__ import annotations


def trials_so_far(storage: str | None, study_name: str | None) -> int:
    """How many trials a stored study holds (0 when there is no storage or no such study yet)."""
    if not storage or not study_name:
        return 0
    import optuna

    try:
        summaries = optuna.study.get_all_study_summaries(storage=storage)
    except Exception:  # noqa: BLE001 - a storage optuna cannot open is reported by the sweeper itself
        return 0
    return next((s.n_trials for s in summaries if s.study_name == study_name), 0)


def study_seed(seed: int | None, storage: str | None, study_name: str | None) -> int | None:
    """``seed`` plus the number of trials the stored study already holds (``${study_seed:...}``)."""
    return None if seed is None else int(seed) + trials_so_far(storage, study_name)
