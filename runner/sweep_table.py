"""The jobs of a sweep folder, read from what each run left behind, best first.

A job folder may be partial (killed, still running, written by an older version): every file is
optional and a file that cannot be read is noted on the job, never raised. The jobs of a grid sweep
that have no folder yet (never started: the sweep was stopped, or still runs) are listed from the
sweep's ``multirun.yaml``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .configuration import is_number
from .errors import NotFoundError
from .run_lock import killed

NOT_STARTED = "not started"
# after the completed jobs with an objective value, in this order (a status not listed here: 5)
KILLED = "killed"  # run.json says running, and the process that ran it is gone (runner/run_lock.killed)
STATUS_ORDER = {"completed": 1, "running": 2, "failed": 3, KILLED: 3, "unknown": 4, NOT_STARTED: 6}
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# metrics shown next to the objective in the printed and Markdown tables (the CSV has them all), and in
# the store's listings; here, not in runner.report, whose Hydra import a listing does not need
PREFERRED = ("accuracy", "balanced_accuracy", "f1_macro", "AP", "AP50", "AP75", "mean_iou", "mean_dice",
             "pixel_accuracy", "f1", "precision", "recall")
SHOWN_METRICS = 2


def preferred_first(metrics: list[str]) -> list[str]:
    """``metrics`` with those of PREFERRED first, in its order; the others after them, as given."""
    return sorted(metrics, key=lambda m: PREFERRED.index(m) if m in PREFERRED else len(PREFERRED))


@dataclass
class Job:
    name: str
    folder: Path
    status: str = "unknown"
    overrides: dict[str, str] | None = None  # None: .hydra/overrides.yaml missing or unreadable
    metric: str | None = None
    direction: str | None = None
    value: float | None = None  # the sweep's objective metric, which ranks the jobs; completed jobs only
    objective: float | None = None  # the job's own objective (of ``metric``, from run.json); completed jobs only
    model: str | None = None
    model_status: str | None = None  # the version's status when the job ended (run.json)
    seconds: float | None = None
    error: str | None = None  # "<type>: <first line>", or what could not be read
    metrics: dict[str, float] = field(default_factory=dict)  # the top-level scalars of metrics.json
    started: float | None = None  # run.json's start, seconds since the epoch
    ran_with: dict[str, str] | None = None  # the overrides run.json records the run had
    kept: bool = False  # completed by an earlier sweep of the same command into this folder

    def param(self, key: str) -> str | None:
        """The override's value as written; "" when the job did not set it, None when unknown."""
        return None if self.overrides is None else self.overrides.get(key, "")


@dataclass
class Sweep:
    folder: Path
    jobs: list[Job]  # best first; failed, unknown and not started last
    swept: list[str]  # override keys whose values differ between jobs
    fixed: dict[str, str]  # override keys every job sets to one value
    metric: str | None
    maximize: bool
    best: Job | None
    metric_names: list[str]  # every scalar metric any job has
    other_objectives: list[str] = field(default_factory=list)  # jobs that optimize another metric
    unlisted: str | None = None  # why the jobs that never started cannot be listed
    earlier: list[str] = field(default_factory=list)  # job folders an earlier sweep into the same folder left


def count_of(n: int, noun: str) -> str:
    """``1 job``, ``2 jobs``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _read(job: Job, relative: str, parse) -> Any:
    path = job.folder / relative
    if not path.is_file():
        return None
    try:
        return parse(path.read_text())
    except Exception as err:  # noqa: BLE001 - a half-written or foreign file is reported, not raised
        note = f"{relative} cannot be read ({type(err).__name__})"
        job.error = f"{job.error}; {note}" if job.error else note
        return None


# command-line keys that say how a sweep runs, not what its jobs compute: no job's parameter
HOW_TO_RUN = ("resume",)


def job_overrides(lines: list) -> list[str]:
    """A job's overrides less those of HOW_TO_RUN: what ``resume=true`` compares, and the report shows."""
    return [str(line) for line in lines if str(line).lstrip("+").partition("=")[0] not in HOW_TO_RUN]


def resumes(overrides: list) -> bool:
    """``resume=true`` as Hydra reads it (a bool: ``true`` in any case); ``resume=yes`` or ``=1`` is no
    bool, so the run would not resume."""
    return any(str(o).lstrip("+").lower() == "resume=true" for o in overrides)


def _overrides(lines: Any) -> dict[str, str]:
    if not isinstance(lines, list):
        raise ValueError("not a list of overrides")
    pairs = (line.partition("=") for line in job_overrides(lines))
    return {key.lstrip("+"): value for key, _, value in pairs}


def _config_objective(text: str) -> dict:
    """``objective`` of the composed config, its interpolations (``${metrics.objective}``) resolved."""
    from omegaconf import OmegaConf

    config = OmegaConf.create(text)
    objective = {}
    for key in ("metric", "direction"):
        try:
            objective[key] = OmegaConf.select(config, f"objective.{key}")
        except Exception:  # noqa: BLE001 - a resolver only the run registered
            objective[key] = None
    return objective


def read_job(folder: Path) -> Job:
    job = Job(folder.name, folder)
    overrides = _read(job, ".hydra/overrides.yaml", lambda text: _overrides(yaml.safe_load(text) or []))
    job.overrides = overrides
    record = _read(job, "run.json", json.loads)
    metrics = _read(job, "metrics.json", json.loads)
    if isinstance(metrics, dict):
        job.metrics = {k: v for k, v in metrics.items() if is_number(v)}
    if isinstance(record, dict):
        job.status = str(record.get("status") or "unknown")
        objective = _dict(record.get("objective"))
        job.metric, job.direction = objective.get("metric"), objective.get("direction")
        if job.status == "completed" and is_number(objective.get("value")):
            job.objective = float(objective["value"])
        job.model, job.model_status = (_dict(record.get("model")).get(key) for key in ("name", "status"))
        job.started = _timestamp(record.get("started"))
        if isinstance(record.get("overrides"), list):
            job.ran_with = _overrides(record["overrides"])
        job.seconds = record.get("seconds") if is_number(record.get("seconds")) else None
        if job.status == "running" and killed(folder):
            job.status = KILLED
            job.error = "its process is gone without recording an end (kill -9, out of memory): resume=true runs it again"
        error = record.get("error")
        if isinstance(error, dict):
            first = (str(error.get("message") or "").strip().splitlines() or [""])[0]
            job.error = f"{error.get('type') or 'Error'}: {first}" + (f"; {job.error}" if job.error else "")
    else:  # no run.json: killed before the run started, or written by a version without it
        job.status = "completed" if isinstance(metrics, dict) else "unknown"
    if job.metric is None or job.direction is None:
        config = _dict(_read(job, ".hydra/config.yaml", _config_objective))
        job.metric = job.metric or config.get("metric")
        job.direction = job.direction or config.get("direction")
    if job.model is None:
        job.model = _dict(_read(job, "model.json", json.loads)).get("name")
    job.model = None if job.model is None else str(job.model)
    if job.status == "unknown" and not job.error:
        job.error = "no run.json or metrics.json: the job did not run, or was stopped before it started"
    return job


def _timestamp(value) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def _this_sweeps(folder: Path, jobs: list[Job]) -> tuple[list[Job], list[str]]:
    """The jobs of the sweep that wrote ``multirun.yaml`` last (Hydra writes it as a sweep starts), and
    the names of job folders an earlier sweep into the same folder left, which started before it."""
    path = folder / "multirun.yaml"
    if not path.is_file():
        return jobs, []
    began = path.stat().st_mtime - 2.0  # run.json times are whole seconds
    before = [job for job in jobs if job.started is not None and job.started < began]
    resumed = _resumed(path)
    for job in before:
        job.kept = resumed and job.status == "completed" and job.ran_with is not None and job.ran_with == job.overrides
    earlier = [job.name for job in before if not job.kept]
    if earlier and len(earlier) == sum(job.started is not None for job in jobs):  # a copied folder: new file times
        return jobs, []
    return [job for job in jobs if job.name not in earlier], earlier


def _resumed(multirun: Path) -> bool:
    """The sweep that wrote ``multirun.yaml`` was given ``resume=true``: it kept the jobs completed before."""
    try:
        return resumes(((yaml.safe_load(multirun.read_text()) or {})["hydra"]["overrides"]["task"]) or [])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return False


def job_order(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def job_folders(folder: Path) -> list[Path]:
    """Hydra's numbered job folders, and any other subfolder that a run wrote into."""
    found = [p for p in folder.iterdir() if p.is_dir() and (
        p.name.isdigit() or (p / ".hydra").is_dir() or (p / "run.json").is_file())]
    return sorted(found, key=lambda p: job_order(p.name))


# what a sweep folder holds beside its jobs: Hydra's multirun.yaml (a grid sweep), the Optuna sweeper's
# results (it writes no multirun.yaml), or a report built there
_SWEEP_MARKERS = ("multirun.yaml", "optimization_results.yaml", "sweep_report.csv")


def _sweeps_under(folder: Path) -> list[str]:
    """The last few sweep folders under ``folder`` that hold jobs (one stopped before its first job does not)."""
    found = sorted({p.parent for marker in _SWEEP_MARKERS for pattern in ("*/", "*/*/", "multirun/*/*/")
                    for p in folder.glob(pattern + marker)})
    return [str(p) for p in found if job_folders(p)][-3:]


def _not_a_sweep(folder: Path, what: str) -> NotFoundError:
    if any((folder.parent / marker).is_file() for marker in _SWEEP_MARKERS) and \
            folder.resolve() in [p.resolve() for p in job_folders(folder.parent)]:
        return NotFoundError(what, where=str(folder), fix=f"this is job {folder.name} of the sweep {folder.parent}: pass "
                                                          "that folder")
    fix = ("pass a sweep folder, multirun/<date>/<time>: the one holding the job folders 0, 1, ... (and "
           "multirun.yaml, or an Optuna search's optimization_results.yaml)")
    candidates = _sweeps_under(folder) if folder.is_dir() else _sweeps_under(Path("multirun"))
    if candidates:
        fix += f"; e.g. {', '.join(candidates)}"
    return NotFoundError(what, where=str(folder), fix=fix)


def planned_overrides(folder: Path) -> list[list[str]] | None:
    """The overrides of every job of a grid sweep, in job order, expanded as Hydra's basic sweeper
    expands them from the ``multirun.yaml`` it writes before the first job starts. None when that
    file is missing or another sweeper ran (Optuna asks for its trials as it goes)."""
    path = folder / "multirun.yaml"
    if not path.is_file():
        return None
    from omegaconf import OmegaConf

    hydra = OmegaConf.load(path).hydra
    if OmegaConf.select(hydra, "sweeper._target_") != BASIC_SWEEPER:
        return None
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.plugins import Plugins

    Plugins.instance()  # registers the config sources (file://, pkg://) that glob() lists the options of
    search_path = ConfigSearchPathImpl()
    for source in hydra.runtime.config_sources:
        search_path.append(source.provider, f"{source.schema}://{source.path}")
    params = OmegaConf.select(hydra, "sweeper.params")
    params = {} if params is None else OmegaConf.to_container(params, resolve=True)
    arguments = [f"{key}={value}" for key, value in params.items()] + list(hydra.overrides.task)
    parser = OverridesParser.create(config_loader=ConfigLoaderImpl(config_search_path=search_path))
    [jobs] = BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
    return jobs


def not_started(folder: Path, jobs: list[Job], planned: list[list[str]]) -> list[Job]:
    """The planned jobs that no folder holds. Job ``n`` is folder ``n`` (``hydra.sweep.subdir`` by
    default), or else the folder of a job with the same overrides."""
    names = {job.name for job in jobs}
    elsewhere = [job.overrides for job in jobs if not job.name.isdigit()]
    missing = []
    for number, lines in enumerate(planned):
        overrides = _overrides(lines)
        if str(number) in names:
            continue
        if overrides in elsewhere:
            elsewhere.remove(overrides)
            continue
        missing.append(Job(str(number), folder / str(number), status=NOT_STARTED, overrides=overrides))
    return missing


def declared_sweeps(folder: Path, jobs: list[Job]) -> set[str] | None:
    """The keys the sweep was told to vary: its sweeper's ``params`` and the command line's sweep
    overrides (``multirun.yaml``; an Optuna sweep has none, and its first job's ``.hydra/hydra.yaml``
    gives the params). None when neither file can be read."""
    import yaml

    from .argv_checks import is_sweep_override

    for path in [folder / "multirun.yaml", *(job.folder / ".hydra" / "hydra.yaml" for job in jobs[:1])]:
        try:
            hydra = (yaml.safe_load(path.read_text()) or {})["hydra"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            continue
        keys = {str(key).lstrip("+~") for key in (hydra.get("sweeper") or {}).get("params") or {}}
        if path.name == "multirun.yaml":
            keys |= {str(o).partition("=")[0].lstrip("+~") for o in (hydra.get("overrides") or {}).get("task") or []
                     if is_sweep_override(str(o))}
        return keys
    return None


def split_params(jobs: list[Job], declared: set[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Swept: the override keys whose values differ between jobs, and those the sweep was told to vary
    (``declared``) even where they drew one value; without ``declared``, every key of a single job."""
    known = [job.overrides for job in jobs if job.overrides is not None]
    keys = list(dict.fromkeys(key for overrides in known for key in overrides))
    if len(known) <= 1 and not declared:
        return keys, {}
    swept = [key for key in keys if len({overrides.get(key) for overrides in known}) > 1 or key in (declared or ())]
    return swept, {key: known[0][key] for key in keys if key not in swept}


def collect(folder: Path) -> Sweep:
    """The sweep in ``folder``, sorted by its objective. Raises NotFoundError when it holds no job."""
    if not folder.is_dir():
        raise _not_a_sweep(folder, f"there is no folder {folder}" if not folder.exists() else f"{folder} is not a folder")
    jobs = [read_job(path) for path in job_folders(folder)]
    if not jobs:
        raise _not_a_sweep(folder, f"{folder} holds no job folders")
    jobs, earlier = _this_sweeps(folder, jobs)
    unlisted = None
    try:
        jobs += not_started(folder, jobs, planned_overrides(folder) or [])
    except Exception as err:  # noqa: BLE001 - the jobs that ran are reported all the same
        unlisted = f"multirun.yaml cannot be expanded ({type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]})"

    specs = Counter((job.metric, job.direction) for job in jobs if job.metric)
    metric, direction = specs.most_common(1)[0][0] if specs else (None, None)
    if direction is None:
        direction = next((job.direction for job in jobs if job.direction), "maximize")
    others = []
    for job in jobs:
        if job.status == "completed" and job.objective is None and job.metric in job.metrics:
            job.objective = float(job.metrics[job.metric])  # a folder without run.json
        if job.metric and job.metric != metric:
            others.append(job.name)
            job.value = float(job.metrics[metric]) if job.status == "completed" and metric in job.metrics else None
        elif job.objective is not None:
            job.value = job.objective
        elif job.status == "completed" and metric in job.metrics:
            job.value = float(job.metrics[metric])  # a job that does not say its objective
        if job.value is not None and not math.isfinite(job.value):
            job.value = None
    maximize = not str(direction).lower().startswith("min")

    def rank(job: Job) -> tuple:
        if job.value is not None:
            return (0, -job.value if maximize else job.value, job_order(job.name))
        return (STATUS_ORDER.get(job.status, 5), 0.0, job_order(job.name))

    jobs.sort(key=rank)
    best = jobs[0] if jobs[0].value is not None else None
    swept, fixed = split_params(jobs, declared_sweeps(folder, sorted(jobs, key=lambda j: job_order(j.name))))
    metric_names = list(dict.fromkeys(name for job in sorted(jobs, key=lambda j: job_order(j.name))
                                      for name in job.metrics))
    return Sweep(folder, jobs, swept, fixed, metric, maximize, best, metric_names, others, unlisted, earlier)
