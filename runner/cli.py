"""``python -m runner`` / ``dlrun``: Hydra over the top-level ``conf/``."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from . import interrupts
from .argv_checks import (
    composed_search,
    config_file_problem,
    direction_problem,
    expanded_globs,
    grid_sweep_problem,
    group_value_problem,
    help_argv,
    missing_launcher,
    misspelt_key_hint,
    run_dir_in_use_problem,
    search_problem,
    sweep_dir_problem,
    sweeper_key_problem,
    swept_group_key_problem,
    trained_settings,
    trials_problem,
)
from .closed_pipe import run_on_when_reader_leaves
from .errors import RunnerError
from .gc_control import collection_paused, job_heap
from .interrupts import Terminated
from .paths import CONFIG_DIR, dataloop_path_problem
from .resolvers import register_resolvers
from .run_log import to_log_file

register_resolvers()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .errors import RunnerError, raised_at

    run_on_when_reader_leaves()  # again: a launcher's worker process set up its own logging
    logging.captureWarnings(True)  # a library's warnings (scikit-learn's ConvergenceWarning) go to dlrun.log too
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
            every = f"\n  every failed item:\n{err.every_failure()}" if hasattr(err, "every_failure") else ""
            log = to_log_file(logging.ERROR, "%s", f"{err}{every}\n  first failure:\n{trace}" if trace else err)
            message = f"{err}\n  traceback: {log or 'in the run log'}" if trace else str(err)
            message += _changed_configuration_note(err) + _kept_version_note(err)
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
            log = to_log_file(logging.ERROR, "the run failed", exc_info=err)
            message = (f"{type(err).__name__}: {err}"
                       + "".join(f"\n  note: {note}" for note in getattr(err, "__notes__", ()))
                       + f"\n  where: {raised_at(err)}"
                       f"\n  traceback: {log or 'set HYDRA_FULL_ERROR=1 to see it'}{_changed_configuration_note(err)}"
                       f"{_kept_version_note(err)}")
            print(f"error: {message}", file=sys.stderr)
            if multirun:  # as for a runner error: the sweep goes on, and ends on this message if it ends here
                raise JobFailed(f"job {hydra_config.job.num} failed: {message}") from None
            raise SystemExit(1) from None


def _changed_configuration_note(err: BaseException) -> str:
    """For a run that failed with the version's configuration changed from its command line: the
    change is the likely cause when it is a setting the trained weights depend on."""
    from .run_configuration import with_changes

    changes = getattr(err, "configuration_changes", None)
    if not changes:
        return ""
    return (f"\n  note: this run changed the version's configuration, for this run only: {with_changes(changes)}; a "
            "setting the trained model depends on (an input size, a layer's width) cannot change without training "
            "again")


def _kept_version_note(err: BaseException) -> str:
    """For a run that stopped during or after its training: the version it leaves in the store, and
    the whole command that goes on with it (this run's adapter, data and config folders, read from
    its ``.hydra/``), as ``runner.store show`` gives them."""
    name, status, artifacts, run_folder = getattr(err, "kept_version", (None, None, None, None))
    if status not in ("trained", "failed"):
        return ""
    from .model_details import read_launch, train_again_command, use_command

    launch = read_launch(run_folder, with_overrides=True)
    if status == "trained":
        when = "" if isinstance(err, KeyboardInterrupt) else "once the cause is fixed, "
        command = use_command(name, launch).get("evaluate") or f"pipeline=evaluate model.name={name}"
        return (f"\n  kept: model version {name} had finished training (status trained); {when}"
                f"{command} scores it without training again")
    # where train_model says the training stopped; an error it did not pass on (raised around it) is taken
    # as a failed train, with a checkpoint when the version holds artifacts
    stage, checkpoint = getattr(err, "training_stopped", ("train", bool(artifacts)))
    if checkpoint:
        saved = (f"with what its training had saved; {train_again_command(launch, name) or f'model.name={name}'} "
                 "trains it again from there")
    else:
        saved = "with no artifacts saved " + (
            "(its save after the failure stored none)" if stage == "train" else
            "(train had ended, then its save stored none)" if stage == "save_to_model" else
            f"({stage} failed, so train never ran)") + (
            ": it holds those of the version it was made from" if artifacts else "")
    return (f"\n  kept: model version {name}, status failed, {saved}; "
            f"python -m runner.store delete-model {name} removes it")


def _kept_by_sweep(sweep_dir: Path) -> str:
    """For a sweep stopped while jobs ran in other processes (a parallel launcher): the versions its
    stopped jobs leave in the store, read from their ``run.json``."""
    from .sweep_table import read_job

    jobs = [read_job(record.parent) for record in sorted(Path(sweep_dir).glob("*/run.json"))]
    kept = [(job.model, job.model_status) for job in jobs
            if job.status == "failed" and job.model and job.model_status in ("trained", "failed")]
    if not kept:
        return ""
    names = " ".join(name for name, _status in kept)
    return (f"\n  kept: {len(kept)} model version(s) of the jobs that stopped: "
            f"{', '.join(f'{name} (status {status})' for name, status in kept)}; python -m runner.store show <version> "
            f"gives the commands that go on with one, python -m runner.store delete-model {names} removes them")


class JobFailed(CompactHydraException):
    """A sweep's job stopped by a runner error (its message already printed): Hydra shows compact
    exceptions as their message alone."""


_GRACE = 3.0  # seconds a process's children (launcher or shard workers) get to end their jobs as interrupted
_terminating = False
_stopped_by = signal.SIGTERM  # the signal that set _terminating
_terminating_since = 0.0
_FORCE_AFTER = _GRACE + 2.0  # seconds after the first stop signal from which another ends the process at once


def _handle_stop_signals() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _terminate)
    default_hook = sys.unraisablehook

    def unraisable(event) -> None:  # the stop raised in a weakref callback: not printed, ended after main
        if not isinstance(event.exc_value, Terminated):
            default_hook(event)

    sys.unraisablehook = unraisable


def _terminate(signum, frame) -> None:
    """SIGTERM or SIGINT: once. Children (a launcher's or the shards' workers) get it too, whether or
    not it was sent to the whole process group, and a moment to record their jobs as interrupted
    before this process ends and takes them down with it; a second signal must not break off that
    clean-up, unless it comes ``_FORCE_AFTER`` seconds after the first: then the clean-up hangs. A sweep's jobs that a worker would start meanwhile do not start (``_STOPPING``)."""
    global _terminating, _stopped_by, _terminating_since
    if _terminating and time.monotonic() - _terminating_since > _FORCE_AFTER:
        # the clean-up is stuck (a write to a pipe no one reads, its parent killed): this one ends it now
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    if _terminating or interrupts.held_back(signum):  # a run writing its last outputs raises it once written
        return
    _terminating, _stopped_by, _terminating_since = True, signum, time.monotonic()
    interrupts.stop(signum)
    _mark_sweep_stopping(signum)
    children = _children()
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)
    if children:
        time.sleep(_GRACE)
    _terminating_since = time.monotonic()  # the clean-up starts now
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


def entry() -> None:
    """``python -m runner`` and ``dlrun``."""
    args = expanded_globs(sys.argv[1:])
    started = time.time()
    message = (dataloop_path_problem() or missing_launcher(args) or config_file_problem(args) or group_value_problem(args)
               or direction_problem(args) or trials_problem(args) or swept_group_key_problem(args)
               or grid_sweep_problem(args) or sweeper_key_problem(args) or run_dir_in_use_problem(args)
               or sweep_dir_problem(args))
    search = None if message else composed_search(args)
    if search:
        message = search_problem([a for a in args if not a.startswith("-")], search)
    if message:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)
    try:
        found = trained_settings(args)
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    for overrides, note in found:
        args += overrides
        print(note, file=sys.stderr)
    run_on_when_reader_leaves()
    _handle_stop_signals()
    sys.argv[1:] = help_argv(args)
    try:
        main()
        _no_stop_signal_from_here()
    except KeyboardInterrupt as err:
        from .report import current_sweep_dir, current_sweep_study

        stopped_by = getattr(err, "signal", signal.SIGINT)
        _settle_trials(started, "interrupted")
        if getattr(err, "after_completion", False) or (current_sweep_dir() is None and interrupts.run_completed()):
            what = " after the run had completed: run.json records it as completed"
        elif current_sweep_dir() is not None:
            what = ": the sweep stopped; each running job's run.json records it as failed, and no further job started"
            if not current_sweep_study()[1]:  # a grid: a search continues its study with its own command
                what += (f"; the same command with hydra.sweep.dir={current_sweep_dir()} resume=true runs the jobs "
                         "that did not complete, and keeps those that did")
        else:
            what = ": the run stopped; run.json records it as failed"
        kept = _kept_version_note(err) or (_kept_by_sweep(current_sweep_dir()) if current_sweep_dir() else "")
        if not kept and current_sweep_dir() is None and not what.startswith(" after"):
            what += ("; the same command runs it again (a predict or evaluate run replaces the model's predictions "
                     "on the items it reaches, so the items this one did not reach keep their earlier ones until then)")
        print(f"interrupted ({stopped_by.name}){what}{kept}", file=sys.stderr)
        raise SystemExit(128 + stopped_by) from None
    except (SystemExit, Exception) as err:
        if not isinstance(err, SystemExit) or err.code not in (0, None):  # the search stopped on an error
            _settle_trials(started, "stopped by that error")
        if isinstance(err, SystemExit) and err.code == 1 and not interrupts.run_started():
            hint = misspelt_key_hint(args)  # Hydra refused the config: "Key 'c' is not in struct" says no more
            if hint:
                print(hint, file=sys.stderr)
            if _refused_by_hydra(err):  # a configuration that cannot run exits 2, as the runner's own refusals
                raise SystemExit(2) from None
        raise


def _refused_by_hydra(err: SystemExit) -> bool:
    """Hydra printed why it could not compose the config (an unknown key, an override it cannot parse
    or merge, a missing option) and exited 1: the exception it caught is the exit's context."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err.__context__, (HydraException, OmegaConfBaseException))


def _no_stop_signal_from_here() -> None:
    """The command is done: a SIGTERM or SIGINT from here on would land in the interpreter's shutdown,
    which prints it as ignored and exits 0. They are blocked instead, and one that came already ends
    the process as one that came after a completed run does."""
    if _terminating:  # its Terminated was raised where Python prints and drops exceptions (a weakref callback)
        raise Terminated(_stopped_by, after_completion=True)
    if not hasattr(signal, "pthread_sigmask"):
        return
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    pending = signal.sigpending() & stop_signals
    if pending:
        raise Terminated(min(pending), after_completion=True)


def _settle_trials(started: float, how: str) -> None:
    """A search that ends early: the trials it had asked for and never told the study about are told
    their value (their job finished) or marked FAIL, so none stays RUNNING in the study its sweeper
    stores."""
    from .report import current_sweep_dir, current_sweep_study
    from .studies import settle_interrupted_trials

    storage, study_name = current_sweep_study()
    if not storage or not study_name:
        return
    sweep_dir = current_sweep_dir()
    told, failed = settle_interrupted_trials(storage, study_name, since=started,
                                             sweep_dirs=[sweep_dir] if sweep_dir else [])
    if told or failed:
        print(f"study {study_name!r}: of the trials {how}, {told} had finished (told their value) and {failed} "
              f"{'is' if failed == 1 else 'are'} marked FAIL; the same command continues the study",
              file=sys.stderr)


if __name__ == "__main__":
    entry()
