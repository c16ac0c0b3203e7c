"""The sweep report: one table of every job of a multirun, best first.

Built from the run folders alone (``run.json``, ``metrics.json``, ``.hydra/``), so the Hydra
callback ``SweepReport`` makes it at the end of a multirun and ``python -m runner.report <folder>``
rebuilds it later, with no store and no Hydra run. Writes ``sweep_report.csv`` (every scalar metric),
``sweep_report.md`` and ``sweep_report.png`` into the sweep folder and prints the table.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import csv
import io
import logging
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .errors import NotFoundError
from .files import write_whole
from .studies import running_trials_warning, study_line
from .sweep_table import SHOWN_METRICS, Sweep, collect, count_of, job_folders, job_order, preferred_first
from .text_table import aligned, first_few, number_cell, short_names
from .trial_versions import TrialVersions

logger = logging.getLogger("runner")

FILES = ("sweep_report.csv", "sweep_report.md", "sweep_report.png")


def _shown(param: str | None) -> str:
    """A param as the table shows it: a sampled float (Optuna's 0.18662266976517972) to 4 digits."""
    if param is None:
        return "?"
    try:
        return f"{float(param):.4g}" if len(param) > 8 and not param.isdigit() else param
    except ValueError:
        return param


def shown_metrics(sweep: Sweep) -> list[str]:
    others = [m for m in sweep.metric_names if m != sweep.metric and not m.startswith("n_")]
    return preferred_first(others)[:SHOWN_METRICS]


def display_rows(sweep: Sweep) -> tuple[list[str], list[list[str]]]:
    """The readable table: job, status, swept params, model version, objective, a few metrics, seconds."""
    short = short_names(sweep.swept)
    metrics = shown_metrics(sweep)
    objective = f"{sweep.metric or 'objective'} ({'max' if sweep.maximize else 'min'})"
    header = ["", "job", "status", *(short[k] for k in sweep.swept), "model version", objective, *metrics, "seconds"]
    rows = []
    for job in sweep.jobs:
        params = [_shown(job.param(key)) for key in sweep.swept]
        status = f"{job.status} (kept)" if job.kept else job.status
        rows.append(["*" if job is sweep.best else "", job.name, status, *params, job.model or "",
                     number_cell(job.value), *(number_cell(job.metrics.get(m)) for m in metrics), number_cell(job.seconds, 1)])
    return header, rows


def _notes(sweep: Sweep) -> list[str]:
    lines = []
    if sweep.fixed:
        lines.append("fixed: " + ", ".join(f"{k}={v}" for k, v in sweep.fixed.items()))
    short = short_names(sweep.swept)
    renamed = [f"{name} = {key}" for key, name in short.items() if name != key]
    if renamed:
        lines.append("swept: " + ", ".join(renamed))
    if sweep.other_objectives:
        jobs = {job.name: job for job in sweep.jobs}
        own = ", ".join(f"{name}: {jobs[name].metric} {number_cell(jobs[name].objective)}".rstrip()
                        for name in sweep.other_objectives)
        if len(sweep.other_objectives) == 1:
            lines.append(f"job {sweep.other_objectives[0]} optimizes another metric ({own}); shown: its "
                         f"{sweep.metric} where it computed it")
        else:
            lines.append(f"jobs {', '.join(sweep.other_objectives)} optimize other metrics ({own}); shown: "
                         f"their {sweep.metric} where they computed it")
    if sweep.unlisted:
        lines.append(f"jobs that never started are not listed: {sweep.unlisted}")
    kept = [job.name for job in sorted(sweep.jobs, key=lambda j: job_order(j.name)) if job.kept]
    if kept:
        lines.append(f"kept: job{'s' if len(kept) > 1 else ''} {first_few(kept)} completed in an earlier sweep of this "
                     "command into this folder (resume=true), and did not run again")
    if sweep.earlier:
        lines.append(f"left out: job folder{'s' if len(sweep.earlier) > 1 else ''} {', '.join(sweep.earlier)} (an "
                     "earlier sweep into this folder: started before its multirun.yaml was written)")
    return lines


def _summary(sweep: Sweep) -> str:
    counts: dict[str, int] = {}
    for job in sweep.jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    states = ", ".join(f"{n} {status}" for status, n in counts.items())
    direction = "maximize" if sweep.maximize else "minimize"
    return f"{count_of(len(sweep.jobs), 'job')} ({states}); objective {sweep.metric or '?'} ({direction})"


def _best_line(sweep: Sweep) -> str:
    if sweep.best is None:
        return "best: none (no completed job has an objective value)"
    best = sweep.best
    params = ", ".join(f"{k}={_shown(best.param(k))}" for k in sweep.swept)
    return f"best: job {best.name}, {sweep.metric} {number_cell(best.value)}, model version {best.model or '?'}" + (
        f" ({params})" if params else "")


def _problems(sweep: Sweep) -> list[str]:
    return [f"job {job.name} ({job.status}): {job.error}" for job in sweep.jobs if job.error]


def text_table(sweep: Sweep) -> str:
    lines = [f"sweep {sweep.folder}: {_summary(sweep)}", *_notes(sweep), "", *aligned(*display_rows(sweep))]
    problems = _problems(sweep)
    if problems:
        lines += ["", *problems]
    lines += ["", _best_line(sweep)]
    return "\n".join(lines)


def markdown_table(sweep: Sweep) -> str:
    def escape(cell: str) -> str:
        return cell.replace("|", "\\|").replace("\n", " ")

    header, rows = display_rows(sweep)
    header[0] = ""
    lines = [f"# Sweep report: `{sweep.folder.name}`", "", _summary(sweep) + ".", ""]
    lines += [f"- {note}" for note in _notes(sweep)]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for job, row in zip(sweep.jobs, rows, strict=True):
        cells = [escape(cell) for cell in row]
        if job is sweep.best:
            cells = ["best", *(f"**{cell}**" if cell else cell for cell in cells[1:])]
        lines.append("| " + " | ".join(cells) + " |")
    problems = _problems(sweep)
    if problems:
        lines += ["", "Errors:", "", *(f"- {escape(problem)}" for problem in problems)]
    lines += ["", _best_line(sweep) + ".", ""]
    return "\n".join(lines)


def csv_text(sweep: Sweep) -> str:
    """One row per job, every swept param (full key), then the settings every job shares (so CSVs of
    two sweeps stack), the job's own objective and every scalar metric; values as recorded."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    params = [*sweep.swept, *sweep.fixed]
    writer.writerow(["job", "status", "best", *params, "model_version", "objective_metric", "objective",
                     *sweep.metric_names, "seconds", "error"])
    for job in sweep.jobs:
        writer.writerow([job.name, job.status, job is sweep.best, *(job.param(k) or "" for k in params),
                         job.model or "", job.metric or "", _raw(job.objective),
                         *(_raw(job.metrics.get(m)) for m in sweep.metric_names), _raw(job.seconds), job.error or ""])
    return out.getvalue()


def _raw(value: Any) -> str:
    return "" if value is None else str(value)


def build(folder: str | Path, echo: bool = True) -> Sweep:
    """Collect the sweep in ``folder``, write the three report files there and print the table."""
    from .sweep_plot import plot_sweep

    sweep = collect(Path(folder))
    write_whole(sweep.folder / FILES[0], lambda p: p.write_text(csv_text(sweep), encoding="utf-8"))
    write_whole(sweep.folder / FILES[1], lambda p: p.write_text(markdown_table(sweep), encoding="utf-8"))
    write_whole(sweep.folder / FILES[2], lambda p: plot_sweep(sweep, p))
    if echo:
        print(text_table(sweep))
        print(f"report: {', '.join(str(sweep.folder / name) for name in FILES)}")
    return sweep


_current_sweep: Path | None = None  # the folder of the multirun this process runs (Hydra keeps no config of it)
# (storage, study name, when the search began) of its sweeper, if it stores one
_current_study: tuple[str | None, str | None, float] = (None, None, 0.0)
# (root, project) of the local platform the sweep's jobs store their versions in
_platform_root: tuple[str, str] | None = None


def current_sweep_dir() -> Path | None:
    return _current_sweep


def current_sweep_study() -> tuple[str | None, str | None]:
    return _current_study[0], _current_study[1]


class SweepReport(Callback):
    """Builds the report when a multirun ends. A failed job makes the sweeper raise and Hydra then
    skips ``on_multirun_end``, so the report is built at exit instead: it shows that job's error."""

    def __init__(self) -> None:
        self.sweep_dir: Path | None = None
        self.done = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current_sweep, _current_study, _platform_root
        self.sweep_dir = _current_sweep = _sweep_dir(config)
        with contextlib.suppress(Exception):  # another platform, or a root that does not resolve: no lookup
            if str(config.platform.get("_target_", "")).endswith("LocalPlatform"):
                _platform_root = (str(config.platform.root), str(config.platform.project))
        with contextlib.suppress(Exception):  # a sweeper without a study, or one whose storage does not resolve
            _current_study = (config.hydra.sweeper.get("storage"), config.hydra.sweeper.get("study_name"), time.time())
            warning = running_trials_warning(*_current_study[:2])
            if warning:
                logger.warning("%s", warning)
        if self.sweep_dir is not None:
            atexit.register(self._at_exit)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = self.sweep_dir or _sweep_dir(config)
        if folder is not None:
            self._build(folder)

    def _at_exit(self) -> None:
        if not self.done and self.sweep_dir is not None:
            self._build(self.sweep_dir)

    def _build(self, folder: Path) -> None:
        self.done = True
        try:
            if not folder.is_dir() or not job_folders(folder):  # the sweep failed, or stopped, before its first job
                logger.warning("no job of this sweep ran: no sweep report written")
                return
            sys.stdout.flush()
            sweep = build(folder)
            searched = all(_current_study[:2])  # else no study line: the versions' run folders go unread
            study = study_line(*_current_study, folder, len(sweep.jobs), sweep.metric,
                               version_of=TrialVersions.at(*_platform_root) if _platform_root and searched else None)
            if study:
                print(study)
                # the study beside the table (a rebuild from the folders has no study to ask)
                table = markdown_table(sweep).rstrip()
                write_whole(sweep.folder / FILES[1], lambda p: p.write_text(f"{table}\n\n{study}\n", encoding="utf-8"))
            sys.stdout.flush()
        except Exception as err:  # noqa: BLE001 - the sweep's own outcome stands; the report is extra
            logger.warning("the sweep report of %s was not written: %s: %s", folder, type(err).__name__, err)


def _sweep_dir(config: DictConfig) -> Path | None:
    try:
        return Path(str(config.hydra.sweep.dir))
    except Exception as err:  # noqa: BLE001 - a report must never stop the sweep
        logger.warning("no sweep report: hydra.sweep.dir cannot be resolved: %s", err)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.report",
        description="Rebuild the report of a multirun from its folder: print the table of every job (best "
                    f"first, marked *) and write {', '.join(FILES)} into the folder.")
    parser.add_argument("folder", help="the sweep folder, e.g. multirun/<date>/<time> (holds the job folders 0, 1, ...)")
    args = parser.parse_args(argv)
    try:
        build(args.folder)
    except NotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from .closed_pipe import printing

    sys.exit(printing(main))
