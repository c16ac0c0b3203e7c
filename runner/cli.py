"""``python -m runner`` / ``dlrun``: Hydra over the top-level ``conf/``."""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from . import interrupts
from .gc_control import collection_paused, job_heap
from .interrupts import Terminated
from .resolvers import register_resolvers

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


register_resolvers()

# launcher option -> (the plugin's module, the extra that installs it)
LAUNCHER_PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
}


def missing_launcher(argv: list[str]) -> str | None:
    """The message for a ``hydra/launcher=<name>`` whose plugin is not installed, else None.

    Hydra would fail later with an import trace that does not say which package to install."""
    import importlib.util

    for arg in argv:
        key, _, name = arg.lstrip("+~").partition("=")
        if key != "hydra/launcher" or name not in LAUNCHER_PLUGINS:
            continue
        module, extra = LAUNCHER_PLUGINS[name]
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            return (f"hydra/launcher={name} needs the {module.split('.')[-1].replace('_', '-')} plugin, which is "
                    f"not installed\n  where: {arg}\n  fix: pip install -e \".[{extra}]\" (or choose another launcher)")
    return None


_NOT_A_NAME = re.compile(r"(?i)(true|false|null|[-+]?\d[\d_]*(\.\d*)?(e[-+]?\d+)?)")
# options may come from other config folders too: then only Hydra knows them all
_MORE_CONFIG = ("hydra.searchpath", "--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")


def group_value_problem(argv: list[str]) -> str | None:
    """The message for ``group=<value>`` where the value is not an option's name (``debug=true``,
    ``adapter=3``) or names no option of the group (``adapter=nope``), else None. Hydra would fail
    with a traceback about a bool or an int, or with exit status 1."""
    more_config = any(arg.split("=")[0] in _MORE_CONFIG for arg in argv)
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        group = Path(CONFIG_DIR) / key.split("@")[0]
        if not sep or key.startswith(("hydra", "~")) or not group.is_dir():
            continue
        options = sorted(str(p.relative_to(group).with_suffix("")) for p in group.rglob("*.yaml"))
        fix = f"{key}=<option>, one of {options} (or ~{key} to leave the group out)"
        if _NOT_A_NAME.fullmatch(value.strip()):
            return (f"{key} is a config group: its value names one of its options, not {value!r}\n  where: {arg}\n"
                    f"  fix: {fix}")
        if more_config or any(c in value for c in "()[]${}'\""):  # a sweep function, an interpolation
            continue
        unknown = [name for name in value.split(",") if name.strip() and name.strip() not in options]
        if unknown:
            close = difflib.get_close_matches(unknown[0].strip(), options, n=1)
            hint = f" (did you mean {key}={close[0]}?)" if close else ""
            return f"{key} has no option {unknown[0].strip()!r}{hint}\n  where: {arg}\n  fix: {fix}"
    return None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .errors import RunnerError, raised_at

    hydra_config = HydraConfig.get()
    multirun = hydra_config.mode == RunMode.MULTIRUN
    if threading.current_thread() is threading.main_thread():
        # also in a launcher's worker process (joblib), which runs its jobs here: a SIGTERM or Ctrl-C sent
        # to the sweep's process group then ends each running job as an interrupted one, not mid-write
        _handle_stop_signals()
    stopped_by = _sweep_stopping(hydra_config.sweep.dir) if multirun else None
    if stopped_by:
        interrupts.stop(stopped_by)  # app.run records this job as interrupted
    with job_heap():  # the process may end after this job: its exit then skips a pass over the heap
        try:
            with collection_paused():  # dtlpy and scikit-learn load here
                from .app import run
            return run(cfg, hydra_config.runtime.output_dir)
        except RunnerError as err:
            # failures of many items (PredictionError) carry the first one's traceback: to the log
            trace = getattr(err, "traceback_text", None)
            log = _to_log_file(logging.ERROR, "%s", f"{err}\n  first failure:\n{trace}" if trace else err)
            message = f"{err}\n  traceback: {log or 'in the run log'}" if trace else str(err)
            print(f"error: {message}", file=sys.stderr)
            if multirun:
                # the launcher marks this job failed and the sweep goes on (its sweeper decides when to
                # stop); when the sweep ends on it, Hydra prints this message, not a traceback
                raise JobFailed(f"job {hydra_config.job.num} failed: {message}") from None
            raise SystemExit(getattr(err, "exit_code", 2)) from None
        except Exception as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            # raised by an adapter or a library: the message and where it was raised here, the whole
            # traceback in the run's log
            log = _to_log_file(logging.ERROR, "the run failed", exc_info=err)
            message = (f"{type(err).__name__}: {err}\n  where: {raised_at(err)}"
                       f"\n  traceback: {log or 'set HYDRA_FULL_ERROR=1 to see it'}")
            print(f"error: {message}", file=sys.stderr)
            if multirun:  # as for a runner error: the sweep goes on, and ends on this message if it ends here
                raise JobFailed(f"job {hydra_config.job.num} failed: {message}") from None
            raise SystemExit(1) from None


class JobFailed(CompactHydraException):
    """A sweep's job stopped by a runner error (its message already printed): Hydra shows compact
    exceptions as their message alone."""


def _to_log_file(level: int, message: str, *args, exc_info: BaseException | None = None) -> str | None:
    """Log to the job's log file only (the console gets one message on stderr instead); returns its path."""
    logger = logging.getLogger("runner")
    record = logger.makeRecord(logger.name, level, __file__, 0, message, args,
                               (type(exc_info), exc_info, exc_info.__traceback__) if exc_info else None)
    path = None
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
            path = handler.baseFilename
    return path


_GRACE = 3.0  # seconds a process's children (launcher or shard workers) get to end their jobs as interrupted
_terminating = False


def _handle_stop_signals() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _terminate)


def _terminate(signum, frame) -> None:
    """SIGTERM or SIGINT: once. Children (a launcher's or the shards' workers) get it too, whether or
    not it was sent to the whole process group, and a moment to record their jobs as interrupted
    before this process ends and takes them down with it; a second signal must not break off that
    clean-up. A sweep's jobs that a worker would start meanwhile do not start (``_STOPPING``)."""
    global _terminating
    if _terminating or interrupts.held_back(signum):  # a run writing its last outputs raises it once written
        return
    _terminating = True
    interrupts.stop(signum)
    _mark_sweep_stopping(signum)
    children = _children()
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)
    if children:
        time.sleep(_GRACE)
    raise Terminated(signum)


# in a sweep's folder while its process stops: "<its pid> <signal>". A launcher's worker (a child of
# that process) reads it before each job, so a job handed out during the grace does not start
_STOPPING = ".stopping"


def _mark_sweep_stopping(signum: int) -> None:
    from .report import current_sweep_dir

    folder = current_sweep_dir()
    if folder is not None:
        with contextlib.suppress(OSError):
            (Path(folder) / _STOPPING).write_text(f"{os.getpid()} {int(signum)}\n")


def _sweep_stopping(sweep_dir: str) -> int | None:
    """The signal the sweep process that started this worker was stopped by, else None (a marker of
    another, earlier sweep into the same folder names another process)."""
    with contextlib.suppress(OSError, ValueError):
        pid, signum = (Path(sweep_dir) / _STOPPING).read_text().split()
        if int(pid) == os.getppid():
            return int(signum)
    return None


def _children() -> list[int]:
    """This process's child processes (from /proc; none where there is no /proc)."""
    me, found = str(os.getpid()), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis
            if stat.read_text().rsplit(")", 1)[1].split()[1] == me:
                found.append(int(stat.parent.name))
    return found


def trials_problem(argv: list[str]) -> str | None:
    """``hydra.sweeper.n_trials`` below 1: Optuna's sweeper would run nothing and then fail with a
    traceback looking for its results file."""
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if key == "hydra.sweeper.n_trials" and sep and value.strip().lstrip("-").isdigit() and int(value) < 1:
            return (f"hydra.sweeper.n_trials is {value.strip()}: a search needs at least one trial\n  where: {arg}\n"
                    "  fix: hydra.sweeper.n_trials=<1 or more>")
    return None


def direction_problem(argv: list[str]) -> str | None:
    """``objective.direction=<other than maximize / minimize>``: the message, else None. Each job checks
    it too, but an Optuna sweeper reads it before any job runs, and fails with a traceback."""
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if key != "objective.direction" or not sep or any(c in value for c in "()[]${}'\""):
            continue  # a sweep function or an interpolation: the jobs check what it gives
        wrong = [v.strip() for v in value.split(",") if v.strip() not in ("maximize", "minimize")]
        if wrong:
            return (f"objective.direction is {wrong[0]!r}, not maximize or minimize\n  where: {arg}\n"
                    "  fix: objective.direction=maximize or objective.direction=minimize")
    return None


def _composed(overrides: list[str]):
    """The config these overrides compose (Hydra's own included), or None when it cannot be composed."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("config", overrides=overrides, return_hydra_config=True)
    except Exception:  # noqa: BLE001 - a config Hydra cannot compose: Hydra itself says why, next
        return None
    finally:
        GlobalHydra.instance().clear()


def stored_study(argv: list[str]) -> tuple[str, str, object] | None:
    """(storage, study name, composed config) of an Optuna search (``hparams_search=...``) that stores
    its study; None for a single run of a trial's overrides (``hydra.mode=RUN``), and when other config
    folders are given (only Hydra reads those)."""
    if not any(arg.startswith("hparams_search=") for arg in argv) or "hydra.mode=RUN" in argv or any(
            arg.split("=")[0] in _MORE_CONFIG for arg in argv):
        return None
    cfg = _composed([a for a in argv if not a.startswith("-") and not _is_sweep(a)])
    if cfg is None:
        return None
    storage, study_name = cfg.hydra.sweeper.get("storage"), cfg.hydra.sweeper.get("study_name")
    return (storage, study_name, cfg) if storage and study_name else None


_SWEEP_FUNCTION = re.compile(r"\s*(choice|range|interval|tag|glob|shuffle|sort)\(")


def _is_sweep(arg: str) -> bool:
    """A sweep override (``key=choice(...)``, ``key=1,2``): the sweeper reads it, compose cannot."""
    value = arg.partition("=")[2]
    return bool(_SWEEP_FUNCTION.match(value)) or ("," in value and not value.strip().startswith(("[", "{")))


def _value(cfg, key: str) -> object:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    node = OmegaConf.select(cfg, key.lstrip("+~"), default=None)
    return OmegaConf.to_container(node, resolve=False) if isinstance(node, (DictConfig, ListConfig)) else node


def study_problem(argv: list[str], study: tuple[str, str, object]) -> str | None:
    """The message when a stored study would be resumed with fixed settings that compose to other
    values than those its trials ran with (``seed=0`` written out is the default, not a change), or
    over a search space that Optuna refuses for the parameters its trials drew."""
    from .studies import (
        fixed_overrides,
        free_to_change,
        resume_message,
        search_space_changes,
        search_space_message,
        stored_trials,
    )

    storage, study_name, now_cfg = study
    stored = stored_trials(storage, study_name)
    if stored is None:
        return None
    now = fixed_overrides(argv)
    then_cfg = _composed([f"{key}={value}" for key, value in stored.ran_with.items()])
    changed = []
    for key in sorted(set(stored.ran_with) | set(now)):
        if free_to_change(key):
            continue
        if then_cfg is not None:
            before, after = _value(then_cfg, key), _value(now_cfg, key)
        else:  # the first trial's overrides do not compose again: compare them as written
            before, after = stored.ran_with.get(key, "<not set>"), now.get(key, "<not set>")
        if before != after:
            changed.append((key, stored.ran_with.get(key, "<not set>"), now.get(key, "<not set>")))
    if changed:
        return resume_message(study_name, storage, stored.n_trials, changed)
    # the search space as the sweeper builds it: its params, then the command line's sweeps over them
    params = [f"{key}={value}" for key, value in (now_cfg.hydra.sweeper.get("params") or {}).items()]
    params += [arg for arg in argv if _is_sweep(arg) and not arg.lstrip("+~").startswith("hydra")]
    space_changed = search_space_changes(stored.distributions, params)
    return search_space_message(study_name, storage, stored.n_trials, space_changed) if space_changed else None


def entry() -> None:
    """``python -m runner`` and ``dlrun``."""
    args = sys.argv[1:]
    started = time.time()
    message = missing_launcher(args) or group_value_problem(args) or direction_problem(args) or trials_problem(args)
    study = None if message else stored_study(args)
    if study:
        message = study_problem([a for a in args if not a.startswith("-")], study)
    if message:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)
    _handle_stop_signals()
    try:
        main()
    except KeyboardInterrupt as err:
        from .report import current_sweep_dir

        stopped_by = getattr(err, "signal", signal.SIGINT)
        _settle_trials(study, started, "interrupted")
        if getattr(err, "after_completion", False) or (current_sweep_dir() is None and interrupts.run_completed()):
            what = "after the run had completed: run.json records it as completed"
        elif current_sweep_dir() is not None:
            what = "the sweep stopped; each running job's run.json records it as failed, and no further job started"
        else:
            what = "the run stopped; run.json records it as failed"
        print(f"interrupted ({stopped_by.name}) {what}", file=sys.stderr)
        raise SystemExit(128 + stopped_by) from None
    except (SystemExit, Exception) as err:
        if not isinstance(err, SystemExit) or err.code not in (0, None):  # the search stopped on an error
            _settle_trials(study, started, "stopped by that error")
        raise


def _settle_trials(study: tuple[str, str] | None, started: float, how: str) -> None:
    """A search that ends early: the trials it had asked for and never told the study about are told
    their value (their job finished) or marked FAIL, so none stays RUNNING in the stored study."""
    if not study:
        return
    from .report import current_sweep_dir
    from .studies import settle_interrupted_trials

    told, failed = settle_interrupted_trials(study[0], study[1], since=started, sweep_dir=current_sweep_dir())
    if told or failed:
        print(f"study {study[1]!r}: of the trials {how}, {told} had finished (told their value) and {failed} are "
              "marked FAIL", file=sys.stderr)


if __name__ == "__main__":
    entry()
