"""Seeds, resumes and interruptions of stored Optuna studies.

A seeded sampler restarts its random stream in every process, so a second invocation of a stored
study would propose the first invocation's startup trials again. Seeding it with the study's trial
count as well (``seed: ${study_seed:${seed},<storage>,<study name>}``) keeps a resumed study
reproducible without repeating it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import yaml


def _summary(storage: str | None, study_name: str | None):
    """Optuna's summary of the stored study, or None (no storage, no such study, or a storage optuna
    cannot open: the sweeper itself reports that)."""
    if not storage or not study_name:
        return None
    import optuna

    try:
        summaries = optuna.study.get_all_study_summaries(storage=storage)
    except Exception:  # noqa: BLE001
        return None
    return next((s for s in summaries if s.study_name == study_name), None)


def trials_so_far(storage: str | None, study_name: str | None) -> int:
    """How many trials a stored study holds (0 when there is no storage or no such study yet)."""
    summary = _summary(storage, study_name)
    return summary.n_trials if summary is not None else 0


def study_seed(seed: int | None, storage: str | None, study_name: str | None) -> int | None:
    """The sampler's seed (``${study_seed:...}``): ``seed`` for a new study; for a resumed one, a seed
    drawn from ``seed`` and the number of trials the study holds. Not their sum: numpy's generators
    seeded with nearby integers (0 and 3) make nearly the same first draws, so a resumed study would
    propose its first trial again."""
    if seed is None:
        return None
    held = trials_so_far(storage, study_name)
    if held == 0:
        return int(seed)
    import numpy as np

    return int(np.random.SeedSequence([int(seed), held]).generate_state(1)[0])



def objective_problem(steps: list[str], metric: str | None) -> tuple[str, str, str] | None:
    """(what, where, fix) when an Optuna search's trials would return no objective: without an evaluate
    step (or an objective metric) every trial would train, then fail in the sweeper."""
    if "evaluate" in steps and metric:
        return None
    return (f"an Optuna search needs each trial's objective, and pipeline steps {steps} (objective {metric!r}) "
            "give none", "hparams_search, pipeline", "search with an evaluate step (pipeline=train_evaluate, the "
            "default) and an objective.metric; or sweep a grid (-m) to train versions only")


# fixed overrides a resumed study may change: where things are kept and how fast, not what a trial measures
_FREE_TO_CHANGE = ("batch_size", "sharding.", "platform.", "paths.", "pipeline.cleanup")


def _plain(value) -> object:
    """An override's value as parsed (``1e-3`` and ``0.001`` alike)."""
    import yaml

    try:
        return yaml.safe_load(str(value))
    except yaml.YAMLError:
        return str(value)


def fixed_overrides(argv: list[str]) -> dict[str, object]:
    """The command line's fixed overrides, which the Optuna sweeper records on each trial
    (``user_attrs``): not Hydra's own, not flags, not sweeps."""
    fixed = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if sep and not arg.startswith("-") and not key.startswith("hydra") and not any(c in value for c in "(),[]"):
            fixed[key] = _plain(value)
    return fixed


def free_to_change(key: str) -> bool:
    return key.startswith(_FREE_TO_CHANGE)


class StoredStudy(NamedTuple):
    n_trials: int
    n_finished: int  # trials told their value: those a resumed study's new values would be compared with
    ran_with: dict | None  # the fixed overrides its first finished trial ran with; None: none finished
    distributions: dict  # parameter -> the distribution its trials (failed ones too) drew it from
    direction: str | None  # maximize / minimize, as the study was made


def stored_trials(storage: str | None, study_name: str | None) -> StoredStudy | None:
    """What a resumed study would continue; None when there is no storage or no such study, or it
    holds no trial."""
    if not storage or not study_name:
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if _summary(storage, study_name) is None:
        return None
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
    except Exception:  # noqa: BLE001 - a storage optuna cannot open is reported by the sweeper itself
        return None
    if not trials:
        return None
    direction = study.direction.name.lower() if study.direction.name in ("MAXIMIZE", "MINIMIZE") else None
    distributions = {}
    for trial in trials:
        for name, distribution in trial.distributions.items():
            distributions.setdefault(name, distribution)
    finished = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
    ran_with = {key: _plain(value) for key, value in finished[0].user_attrs.items()} if finished else None
    return StoredStudy(len(trials), len(finished), ran_with, distributions, direction)


def search_space_changes(stored: dict, overrides: list[str]) -> list[tuple[str, str, str]]:
    """(parameter, as the stored trials drew it, as ``overrides`` would) for each parameter whose new
    distribution Optuna refuses for a study that holds the old one: another kind (an int interval
    become a float one, a choice an interval) or a choice of other values. A range may widen."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
    from optuna.distributions import check_distribution_compatibility

    try:
        now, _ = create_params_from_overrides(overrides)
    except Exception:  # noqa: BLE001 - an override the sweeper cannot parse: it reports that itself
        return []
    changes = []
    for name in sorted(set(stored) & set(now)):
        try:
            check_distribution_compatibility(stored[name], now[name])
        except ValueError:
            changes.append((name, _shown(stored[name]), _shown(now[name])))
    return changes


def _shown(distribution) -> str:
    """A distribution as the sweep override that gives it."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return f"choice({', '.join(map(str, distribution.choices))})"
    attributes = distribution._asdict()
    shown = f"interval({attributes['low']}, {attributes['high']})"
    step = attributes.get("step", attributes.get("q"))
    if step is not None and step != 1:
        shown = f"range({attributes['low']}, {attributes['high']}, {step})"
    return f"tag(log, {shown})" if attributes.get("log") or "Log" in type(distribution).__name__ else shown


def resume_message(study_name: str, storage: str, n_finished: int, changed: list[tuple[str, object, object]]) -> str:
    """A stored study would be resumed with other fixed settings than its trials ran with (another
    objective, adapter, dataset, subsets ...): their values would not compare, and the sampler would
    learn from both."""
    shown = ", ".join(f"{key}: {before} -> {after}" for key, before, after in changed)
    return (f"study {study_name!r} holds {n_finished} finished trials run with other settings ({shown}): resumed, their "
            f"objective values would not compare, and the sampler would learn from both\n  where: {storage}\n"
            f"  fix: run with the settings its trials ran with, or start a new study: "
            f"hydra.sweeper.study_name=<new name>")


def search_space_message(study_name: str, storage: str, n_trials: int, changed: list[tuple[str, str, str]]) -> str:
    """A stored study would be resumed over a search space Optuna refuses for the parameters its
    trials drew (it would fail every new trial)."""
    shown = ", ".join(f"{name}: {before} -> {after}" for name, before, after in changed)
    return (f"study {study_name!r} holds {n_trials} trials that drew from another search space ({shown}): "
            f"Optuna cannot resume it with another choice (other values, or the same in another order) or another kind of range\n  where: {storage}\n"
            f"  fix: search the space its trials drew from (a range may widen), or start a new study: "
            f"hydra.sweeper.study_name=<new name>")


def study_line(storage: str | None, study_name: str | None, since: float, sweep_dir: str | Path | None,
               trials_here: int, metric: str | None,
               version_of: Callable[[object], str | None] | None = None) -> str | None:
    """For the end of a search begun at ``since``: what the stored study holds now, beside this sweep's
    jobs (Optuna's sweeper prints the study's best, which may come from an earlier run of it, or from
    another search of the same study running at the same time), and the model version of its best
    trial: this sweep's job's, or what ``version_of(trial)`` finds. None without a study."""
    if not storage or not study_name:
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
    except Exception:  # noqa: BLE001 - the report goes on without it
        return None

    def before(trial) -> bool:
        return trial.datetime_start is not None and trial.datetime_start.timestamp() < since

    earlier = sum(map(before, trials))
    meanwhile = len(trials) - earlier - trials_here
    # a resumed study numbers its trials on: job 0 of this sweep is not trial 0
    numbers = [t.number for t in trials if not before(t)]
    here = [] if not (earlier and numbers and meanwhile <= 0) else [
        f"this sweep's job is trial {numbers[0]}" if len(numbers) == 1 else
        f"this sweep's jobs are trials {min(numbers)}-{max(numbers)}"]
    notes = ([f"{earlier} from its earlier runs, resumed here"] if earlier else []) + here + (
        [f"{meanwhile} more begun meanwhile without a job of this sweep: trials it asked for and stopped before "
         "their jobs began, or another search of the study at the same time"] if meanwhile > 0 else [])
    line = f"study {study_name!r}: {len(trials)} trials" + (f" ({'; '.join(notes)})" if notes else "")
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
        best = study.best_trial
        job = None if before(best) else next((j for j in finished_jobs(sweep_dir) if ran_trial(j, best)), None)
        where = "an earlier run of it" if before(best) else "this sweep" if job else "another search of it"
        version = job.version if job else version_of(best) if version_of else None
        line += (f"; the study's best: {metric or 'objective'} {best.value:.4f}, trial {best.number}, from {where}"
                 + (f", model version {version}" if version else ""))
    return line


def running_trials_warning(storage: str | None, study_name: str | None) -> str | None:
    """A study that holds RUNNING trials as a search of it starts: another search of the same study
    is running (they share it, each asking for its own trials), or one was killed before it could
    settle its trials. None when there are none, or no study yet."""
    if not storage or not study_name:
        return None
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        running = optuna.load_study(study_name=study_name, storage=storage).get_trials(
            deepcopy=False, states=(TrialState.RUNNING,))
    except Exception:  # noqa: BLE001 - a new study, or a storage Optuna reports itself
        return None
    if not running:
        return None
    return (f"study {study_name!r} holds {len(running)} running trials (numbers {', '.join(str(t.number) for t in running[:5])}"
            f"{', ...' if len(running) > 5 else ''}): another search of it is running now, and the two share the study "
            "(each runs its own n_trials; the samplers see each other's finished trials), or a search of it was "
            f"killed before it could settle them (they stay running: once no search of it runs, python -m "
            f"runner.store settle-study {study_name} --sweep <the killed search's multirun folder> settles them)")


class FinishedJob(NamedTuple):
    overrides: dict  # as parsed values
    value: float  # its objective
    version: str | None  # the model version it trained or used
    swept: bool = False  # a sweep's job (Hydra ran it in MULTIRUN mode), not a run of it again


def finished_job(folder: str | Path) -> FinishedJob | None:
    """A job folder whose run.json says it completed with an objective; else None."""
    folder = Path(folder)
    try:
        run = json.loads((folder / "run.json").read_text())
        lines = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, ValueError, yaml.YAMLError):
        return None
    value = (run.get("objective") or {}).get("value") if isinstance(run, dict) else None
    if run.get("status") != "completed" or not isinstance(value, (int, float)):
        return None
    pairs = (str(line).partition("=") for line in lines)
    return FinishedJob({key.lstrip("+~"): _plain(v) for key, _, v in pairs}, float(value),
                       (run.get("model") or {}).get("name"), _hydra_mode(folder) == "MULTIRUN")


def _hydra_mode(folder: Path) -> str | None:
    """The mode Hydra ran a job folder's run in (``hydra.mode`` in its ``.hydra/hydra.yaml``): a
    sweep's job (grid or search) is MULTIRUN; a rerun of it (``hydra.mode=RUN``) is RUN."""
    try:
        found = re.search(r"^  mode: (\w+)$", (folder / ".hydra" / "hydra.yaml").read_text(), re.MULTILINE)
    except OSError:
        return None
    return found.group(1) if found else None


def finished_jobs(sweep_dir: str | Path | None) -> list[FinishedJob]:
    """The jobs under ``sweep_dir`` that completed with an objective."""
    found = (finished_job(record.parent) for record in Path(sweep_dir).glob("*/run.json")) if sweep_dir else ()
    return [job for job in found if job is not None]


def ran_trial(job: FinishedJob, trial) -> bool:
    """The job ran this trial: its value, and the trial's parameters among its overrides."""
    return job.value == trial.value and all(job.overrides.get(k) == _plain(v) for k, v in trial.params.items())


def settle_interrupted_trials(storage: str | None, study_name: str | None, since: float,
                              sweep_dirs: Sequence[str | Path] = ()) -> tuple[int, int]:
    """The trials of a stored study left RUNNING by a search stopped at or after ``since`` (Ctrl-C,
    SIGTERM), else RUNNING for good (a resumed search counts them): a trial whose job had finished
    (its run.json under one of ``sweep_dirs`` completed, with the trial's overrides) is told its value,
    the others FAIL. Returns (told complete, marked failed)."""
    if not storage or not study_name:
        return 0, 0
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    jobs = [job for folder in sweep_dirs for job in finished_jobs(folder)]
    complete = failed = 0
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if t.datetime_start is not None and t.datetime_start.timestamp() >= since - 1.0]
        for trial in running:
            wanted = {**{k: _plain(v) for k, v in trial.user_attrs.items()}, **trial.params}
            value = next((job.value for job in jobs if all(job.overrides.get(k) == x for k, x in wanted.items())), None)
            if value is None:
                study.tell(trial.number, state=TrialState.FAIL)
                failed += 1
            else:
                study.tell(trial.number, value)
                complete += 1
    except Exception:  # noqa: BLE001 - best effort on the way out; the study is as optuna left it
        pass
    return complete, failed
