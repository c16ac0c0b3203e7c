"""The sweep report of a sweep that did not run every job (stopped, still running, failed before its
first job), of a sweep whose jobs optimize different metrics, and its wording. Job folders and
``multirun.yaml`` written here the way a run writes them, and real multiruns."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from runner.report import SweepReport, build, markdown_table, text_table
from runner.sweep_table import BASIC_SWEEPER, collect

from .test_sweep_report import TIMEOUT, csv_rows, report, write_job

CONF = Path(__file__).resolve().parent.parent / "conf"
OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def write_multirun(sweep: Path, task: list[str], *, sweeper: str = BASIC_SWEEPER,
                   params: dict[str, str] | None = None) -> None:
    """The keys of ``multirun.yaml`` that say which jobs a sweep runs, as Hydra writes them before the
    first job (interpolations left unresolved)."""
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {
        "sweep": {"dir": str(sweep), "subdir": "${hydra.job.num}"},
        "sweeper": {"_target_": sweeper, "max_batch_size": None, "params": params},
        "overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": task},
        "job": {"num": "???"},
        "runtime": {"config_sources": [{"path": "hydra.conf", "schema": "pkg", "provider": "hydra"},
                                       {"path": str(CONF), "schema": "file", "provider": "main"},
                                       {"path": "", "schema": "structured", "provider": "schema"}]},
    }, "seed": 0}))


def summary(sweep: Path) -> str:
    return text_table(collect(sweep)).splitlines()[0].split(": ", 1)[1]


def run_cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATALOOP_PATH": str(folder / "dl")}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


# -- jobs that never started ---------------------------------------------------------------------


def test_a_stopped_grid_sweep_lists_the_jobs_that_never_started_last(tmp_path):
    write_multirun(tmp_path, ["seed=0,1,2,3,4,5"])
    write_job(tmp_path, "0", ["seed=0"], value=0.96)
    write_job(tmp_path, "1", ["seed=1"], status="failed", error=("KeyboardInterrupt", ""))
    sweep = build(tmp_path, echo=False)
    assert [(job.name, job.status) for job in sweep.jobs] == [
        ("0", "completed"), ("1", "failed"), *((str(n), "not started") for n in range(2, 6))]
    assert [job.param("seed") for job in sweep.jobs] == ["0", "1", "2", "3", "4", "5"]
    assert sweep.swept == ["seed"] and sweep.best.name == "0"
    assert summary(tmp_path) == "6 jobs (1 completed, 1 failed, 4 not started); objective accuracy (maximize)"

    rows = csv_rows(tmp_path)
    assert [(row["job"], row["status"], row["seed"]) for row in rows[2:]] == [
        (str(n), "not started", str(n)) for n in range(2, 6)]
    assert all(row["objective"] == row["model_version"] == row["error"] == "" for row in rows[2:])
    assert "| 5 | not started | 5 |" in markdown_table(sweep)
    assert "job 5" not in text_table(sweep)  # no error line: the status says it


def test_a_report_taken_while_the_sweep_runs_counts_every_job(tmp_path):
    write_multirun(tmp_path, ["seed=0,1"])
    write_job(tmp_path, "0", ["seed=0"], status="running")
    assert summary(tmp_path) == "2 jobs (1 running, 1 not started); objective accuracy (maximize)"


def test_the_sweepers_params_come_first_and_each_job_is_found_by_number(tmp_path):
    write_multirun(tmp_path, ["adapter.configuration.estimator.C=0.1,1.0", "debug=default"], params={"seed": "0,1"})
    write_job(tmp_path, "2", ["seed=1", "adapter.configuration.estimator.C=0.1", "debug=default"], value=0.9)
    sweep = collect(tmp_path)
    assert [(job.name, job.status, job.param("seed"), job.param("adapter.configuration.estimator.C"))
            for job in sweep.jobs] == [("2", "completed", "1", "0.1"), ("0", "not started", "0", "0.1"),
                                       ("1", "not started", "0", "1.0"), ("3", "not started", "1", "1.0")]
    assert sweep.fixed == {"debug": "default"}


def test_job_folders_named_otherwise_are_matched_by_their_overrides(tmp_path):
    write_multirun(tmp_path, ["seed=0,1,2"])
    for name, seed in (("seed=2", "2"), ("seed=0", "0")):  # hydra.sweep.subdir=${hydra.job.override_dirname}
        job = write_job(tmp_path / "tmp", "0", [f"seed={seed}"], value=0.9)
        job.rename(tmp_path / name)
    sweep = collect(tmp_path)
    assert sorted((job.name, job.status) for job in sweep.jobs) == [
        ("1", "not started"), ("seed=0", "completed"), ("seed=2", "completed")]


def test_glob_is_expanded_over_the_config_group(tmp_path):
    write_multirun(tmp_path, ["experiment=glob(digits_*)", "debug=default"])
    write_job(tmp_path, "0", ["experiment=digits_logreg", "debug=default"], status="running")
    sweep = collect(tmp_path)
    assert [(job.name, job.status, job.param("experiment")) for job in sweep.jobs] == [
        ("0", "running", "digits_logreg"), ("1", "not started", "digits_svc")]


def test_an_optuna_sweep_lists_the_trials_that_ran(tmp_path):
    write_multirun(tmp_path, ["hparams_search=digits_optuna"], sweeper=OPTUNA_SWEEPER,
                   params={"adapter.configuration.estimator.C": "tag(log, interval(0.01, 10.0))"})
    write_job(tmp_path, "0", ["hparams_search=digits_optuna", "adapter.configuration.estimator.C=0.5"], value=0.9)
    sweep = collect(tmp_path)
    assert [job.name for job in sweep.jobs] == ["0"] and sweep.unlisted is None
    assert summary(tmp_path) == "1 job (1 completed); objective accuracy (maximize)"


def test_a_searched_key_is_swept_even_where_its_trials_drew_one_value(tmp_path):
    """The sweeper's params (and the command line's sweeps) say what was varied: a parameter two
    trials drew alike is not 'fixed', and a one-trial search still tells its searched key from the rest."""
    params = {"adapter.configuration.epochs": "choice(2, 4)"}
    write_multirun(tmp_path, ["hparams_search=torch_cnn_optuna", "seed=0,1"], sweeper=OPTUNA_SWEEPER, params=params)
    for name, seed in (("0", 0), ("1", 1)):
        write_job(tmp_path, name, ["hparams_search=torch_cnn_optuna", f"seed={seed}", "adapter.configuration.epochs=2"],
                  value=0.9 - seed / 10)
    sweep = collect(tmp_path)
    assert sweep.swept == ["seed", "adapter.configuration.epochs"]
    assert sweep.fixed == {"hparams_search": "torch_cnn_optuna"}

    one = tmp_path / "one"
    write_job(one, "0", ["hparams_search=torch_cnn_optuna", "adapter.configuration.epochs=2"], value=0.9)
    hydra = one / "0" / ".hydra"
    (hydra / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": {"params": params}}}))
    sweep = collect(one)  # no multirun.yaml (Optuna writes none): the job's own hydra.yaml
    assert sweep.swept == ["adapter.configuration.epochs"] and sweep.fixed == {"hparams_search": "torch_cnn_optuna"}


def test_a_multirun_yaml_that_cannot_be_expanded_is_noted(tmp_path):
    write_multirun(tmp_path, ["seed=interval(0, 1)"])  # the grid sweeper refuses it: no job would run
    write_job(tmp_path, "0", ["seed=0"], value=0.9)
    sweep = collect(tmp_path)
    assert [job.name for job in sweep.jobs] == ["0"]
    assert "jobs that never started are not listed: multirun.yaml cannot be expanded (HydraException: " \
           "BasicSweeper does not support sweep type : INTERVAL_SWEEP)" in text_table(sweep).splitlines()


# -- each job's own objective --------------------------------------------------------------------


def test_each_row_has_its_own_objective(tmp_path):
    write_job(tmp_path, "0", ["experiment=digits_logreg"], value=0.96)
    write_job(tmp_path, "1", ["experiment=digits_svc"], value=0.99)
    write_job(tmp_path, "2", ["experiment=shapes_detection"], metric="AP", metrics={"AP": 0.9966, "n_items": 45},
              value=0.9966)
    sweep = build(tmp_path, echo=False)
    assert [job.name for job in sweep.jobs] == ["1", "0", "2"] and sweep.metric == "accuracy"
    rows = {row["job"]: row for row in csv_rows(tmp_path)}
    for name, row in rows.items():
        objective = json.loads((tmp_path / name / "run.json").read_text())["objective"]
        assert (row["objective_metric"], float(row["objective"])) == (objective["metric"], objective["value"])
    assert rows["2"]["objective_metric"] == "AP" and rows["2"]["accuracy"] == ""
    assert "job 2 optimizes another metric (2: AP 0.9966); shown: its accuracy where it computed it" \
        in text_table(sweep).splitlines()

    write_job(tmp_path, "3", ["experiment=shapes_segmentation"], status="failed", metric="mean_iou",
              error=("ValueError", "no"))
    assert ("jobs 2, 3 optimize other metrics (2: AP 0.9966, 3: mean_iou); shown: their accuracy where they "
            "computed it") in text_table(collect(tmp_path)).splitlines()


def test_a_real_mixed_sweep_reports_each_jobs_objective(tmp_path):
    result = run_cli(tmp_path, "-m", "experiment=digits_logreg,shapes_detection", "debug=default")
    assert result.returncode == 0, result.stderr
    [sweep] = [p for p in (tmp_path / "multirun").glob("*/*") if p.is_dir()]
    rows = csv_rows(sweep)
    assert {row["experiment"]: row["objective_metric"] for row in rows} == {
        "digits_logreg": "accuracy", "shapes_detection": "AP"}
    for row in rows:
        record = json.loads((sweep / row["job"] / "run.json").read_text())
        assert row["objective_metric"] == record["objective"]["metric"]
        assert float(row["objective"]) == record["objective"]["value"]
    assert "job 1 optimizes another metric (1: AP " in result.stdout


# -- wording -------------------------------------------------------------------------------------


def test_one_job_is_one_job(tmp_path):
    write_job(tmp_path, "0", ["seed=0"], value=0.9)
    sweep = build(tmp_path, echo=False)
    assert summary(tmp_path) == "1 job (1 completed); objective accuracy (maximize)"
    assert "1 job (1 completed)" in markdown_table(sweep)


# -- a sweep that failed, or was stopped, before its first job -------------------------------------


@pytest.mark.parametrize("made", ["nothing", "multirun.yaml"])
def test_the_callback_says_no_job_ran(tmp_path, caplog, made):
    folder = tmp_path / "multirun" / "2026-11-23" / "21-37-00"
    if made == "multirun.yaml":
        write_multirun(folder, ["seed=0,1"])
    callback = SweepReport()
    with caplog.at_level(logging.WARNING, logger="runner"):
        callback.on_multirun_end(config=OmegaConf.create({"hydra": {"sweep": {"dir": str(folder)}}}))
    assert [record.getMessage() for record in caplog.records] == ["no job of this sweep ran: no sweep report written"]
    assert not (folder / "sweep_report.csv").exists()


# (objective.direction=up and hydra.sweeper.n_trials=0 are refused before Hydra starts: tests/test_cli.py)
@pytest.mark.parametrize("override", ["hydra.sweeper.direction=up"])
def test_a_sweep_that_fails_before_its_first_job_ends_with_a_short_note(tmp_path, override):
    result = run_cli(tmp_path, "hparams_search=digits_optuna", override, "debug=default")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "ValueError" in result.stderr, output  # the sweeper's own error
    assert output.count("no job of this sweep ran: no sweep report written") == 1
    assert "fix: pass a sweep folder" not in output and "NotFoundError" not in output


def test_a_real_sweep_stopped_by_a_failure_lists_the_jobs_it_never_started(tmp_path):
    # one job a batch; the first fails (C=-1), so the grid sweeper stops before the second
    result = run_cli(tmp_path, "-m", "experiment=glob(digits_*)", "adapter.configuration.estimator.C=-1",
                     "hydra.sweeper.max_batch_size=1", "debug=default")
    assert result.returncode != 0 and "InvalidParameterError" in result.stderr
    [sweep] = [p for p in (tmp_path / "multirun").glob("*/*") if p.is_dir()]
    assert not (sweep / "1").exists()
    assert "2 jobs (1 failed, 1 not started)" in result.stdout
    rows = csv_rows(sweep)
    assert [(row["job"], row["status"], row["experiment"]) for row in rows] == [
        ("0", "failed", "digits_logreg"), ("1", "not started", "digits_svc")]

    first = (sweep / "sweep_report.csv").read_bytes()
    rebuilt = report(tmp_path, str(sweep.relative_to(tmp_path)))  # another process, no Hydra run
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (sweep / "sweep_report.csv").read_bytes() == first
