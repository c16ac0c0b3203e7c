"""The sweep report: over job folders written here the way a run writes them, through
``python -m runner.report`` as a real subprocess, and at the end of a real multirun."""

from __future__ import annotations

import atexit
import csv
import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from runner.report import SweepReport, build, markdown_table, text_table
from runner.sweep_plot import numeric_axis
from runner.sweep_table import collect

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIMEOUT = 300
NESTED = {"per_label": {"0": {"precision": 1.0}}, "confusion_matrix": {"labels": ["0"], "matrix": [[1]]},
          "problems": {}, "labels_without_truth": []}


def write_job(sweep: Path, name: str, overrides: list[str] | None, *, status: str | None = "completed",
              value: float | None = None, metrics: dict | None = None, error: tuple[str, str] | None = None,
              metric: str = "accuracy", direction: str = "maximize", model: str | None = None,
              started: str = "2026-11-23T21:37:00+00:00") -> Path:
    """A job folder as the runner leaves it; None leaves that file out."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    if overrides is not None:
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({
        "seed": 0, "metrics": {"objective": metric},
        "objective": {"metric": "${metrics.objective}", "direction": direction}}))
    if metrics is None and value is not None:
        metrics = {metric: value, "f1_macro": round(value - 0.01, 4), "n_items": 269, **NESTED}
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    if status is not None:
        model = model or f"sklearn-digits-20261123-2137{int(name):02d}-abcd"
        (job / "run.json").write_text(json.dumps({
            "status": status, "started": started,
            "finished": None if status == "running" else "2026-11-23T21:37:05+00:00",
            "seconds": None if status == "running" else 5.0 + int(name),
            "objective": {"metric": metric, "direction": direction, "value": value if status == "completed" else None},
            "model": {"id": f"id{name}", "name": model, **({"status": "trained"} if status == "completed" else {})},
            "error": None if error is None else {"type": error[0], "message": error[1]},
        }))
    return job


def report(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATALOOP_PATH": str(folder / "dl")}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "runner.report", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def csv_rows(sweep: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((sweep / "sweep_report.csv").read_text())))


def table_rows(markdown: str) -> list[list[str]]:
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in markdown.splitlines() if line.startswith("|")]


@pytest.fixture
def grid(tmp_path) -> Path:
    """Four values of C, one seed: two completed, one failed, one completed best, one never started."""
    sweep = tmp_path / "multirun" / "2026-11-23" / "21-37-00"
    fixed = ["seed=0", "debug=default"]
    write_job(sweep, "0", [*fixed, "adapter.configuration.estimator.C=0.01"], value=0.90)
    write_job(sweep, "1", [*fixed, "adapter.configuration.estimator.C=1.0"], value=0.97)
    write_job(sweep, "2", [*fixed, "adapter.configuration.estimator.C=-1"], status="failed",
              error=("InvalidParameterError", "The 'C' parameter must be > 0 | got -1\n  where: estimator\n  fix: it"))
    write_job(sweep, "3", [*fixed, "adapter.configuration.estimator.C=100"], value=0.95)
    write_job(sweep, "4", [*fixed, "adapter.configuration.estimator.C=1000"], status=None)
    return sweep


# -- the table -----------------------------------------------------------------------------------


def test_maximize_sorts_best_first_failed_and_unknown_last(grid):
    sweep = collect(grid)
    assert [job.name for job in sweep.jobs] == ["1", "3", "0", "2", "4"]
    assert [job.status for job in sweep.jobs] == ["completed", "completed", "completed", "failed", "unknown"]
    assert sweep.best is sweep.jobs[0] and sweep.best.value == 0.97
    assert sweep.metric == "accuracy" and sweep.maximize
    failed = sweep.jobs[3]
    assert failed.error == "InvalidParameterError: The 'C' parameter must be > 0 | got -1"  # the first line
    assert failed.value is None and failed.model == "sklearn-digits-20261123-213702-abcd"
    assert "did not run" in sweep.jobs[4].error


def test_minimize_sorts_ascending(tmp_path):
    for name, loss in (("0", 0.5), ("1", 0.2), ("2", 0.9)):
        write_job(tmp_path, name, [f"seed={name}"], value=loss, metric="log_loss", direction="minimize")
    write_job(tmp_path, "3", ["seed=3"], status="failed", metric="log_loss", direction="minimize",
              error=("ValueError", "boom"))
    sweep = collect(tmp_path)
    assert not sweep.maximize
    assert [job.name for job in sweep.jobs] == ["1", "0", "2", "3"]
    assert sweep.best.name == "1"
    assert "log_loss (min)" in text_table(sweep)


def test_swept_and_fixed_params(grid, tmp_path):
    sweep = collect(grid)
    assert sweep.swept == ["adapter.configuration.estimator.C"]
    assert sweep.fixed == {"seed": "0", "debug": "default"}
    text = text_table(sweep)
    assert "fixed: seed=0, debug=default" in text
    assert "C = adapter.configuration.estimator.C" in text  # the short column name, explained

    single = tmp_path / "single"
    write_job(single, "0", ["seed=0", "+extra=1"], value=0.9)
    one = collect(single)
    assert one.swept == ["seed", "extra"] and one.fixed == {}


def test_printed_table_marks_the_best_and_shows_errors(grid):
    text = text_table(collect(grid))
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["job", "status"])
    rows = lines[header + 2: header + 7]
    assert rows[0].startswith("*") and rows[0].split()[1:4] == ["1", "completed", "1.0"]
    assert not any(row.startswith("*") for row in rows[1:])
    assert [row.split()[0] for row in rows[1:]] == ["3", "0", "2", "4"]
    assert "accuracy (max)" in lines[header] and "f1_macro" in lines[header]
    assert "cohen_kappa" not in lines[header]  # a few metrics only: the CSV has them all
    assert "job 2 (failed): InvalidParameterError: The 'C' parameter must be > 0 | got -1" in lines
    assert "  where: estimator" not in text
    assert lines[-1].startswith("best: job 1, accuracy 0.9700, model version sklearn-digits-20261123-213701-abcd")


def test_csv_has_one_row_per_job_with_every_scalar_metric(grid):
    build(grid, echo=False)
    rows = csv_rows(grid)
    assert [row["job"] for row in rows] == ["1", "3", "0", "2", "4"]
    assert list(rows[0]) == ["job", "status", "best", "adapter.configuration.estimator.C", "seed", "debug", "model_version",
                             "objective_metric", "objective", "accuracy", "f1_macro", "n_items", "seconds", "error"]
    assert [row["best"] for row in rows] == ["True", "False", "False", "False", "False"]
    assert rows[0]["adapter.configuration.estimator.C"] == "1.0"
    for row in rows[:3]:
        metrics = json.loads((grid / row["job"] / "metrics.json").read_text())
        record = json.loads((grid / row["job"] / "run.json").read_text())
        assert float(row["objective"]) == record["objective"]["value"] == metrics["accuracy"]
        assert float(row["f1_macro"]) == metrics["f1_macro"] and int(row["n_items"]) == 269
        assert row["model_version"] == record["model"]["name"]
        assert float(row["seconds"]) == record["seconds"]
        assert row["status"] == "completed" and row["error"] == ""
    failed, unknown = rows[3], rows[4]
    assert failed["status"] == "failed" and failed["objective"] == failed["accuracy"] == ""
    assert failed["error"] == "InvalidParameterError: The 'C' parameter must be > 0 | got -1"
    assert unknown["status"] == "unknown" and unknown["model_version"] == ""


def test_markdown_table_has_one_row_per_job_and_the_best_in_bold(grid):
    markdown = markdown_table(collect(grid))
    header, separator, *rows = table_rows(markdown)
    assert header[1:3] == ["job", "status"] and "model version" in header
    assert set(separator) == {"---"} and len(separator) == len(header)
    assert len(rows) == 5 and all(len(row) == len(header) for row in rows)  # the | in the error is escaped
    assert rows[0][0] == "best" and rows[0][1] == "**1**"
    assert all("**" not in cell for row in rows[1:] for cell in row)
    assert "InvalidParameterError" in markdown


def test_png_is_written_and_the_axis_follows_the_values(grid):
    build(grid, echo=False)
    assert (grid / "sweep_report.png").read_bytes()[:8] == PNG_MAGIC
    assert numeric_axis(["0.01", "1.0", "100"]) == "log"
    assert numeric_axis(["0.1", "1.0", "5"]) == "linear"
    assert numeric_axis(["-1", "1000"]) == "linear"  # not all positive
    assert numeric_axis(["sklearn", "sklearn_svc"]) is None
    assert numeric_axis(["1", "nan"]) is None


def test_categorical_params_and_no_completed_job_still_make_every_file(tmp_path):
    write_job(tmp_path, "0", ["adapter=sklearn"], status="failed", error=("ValueError", "no"))
    write_job(tmp_path, "1", ["adapter=sklearn_svc"], status="running")
    sweep = build(tmp_path, echo=False)
    assert sweep.best is None
    assert [job.status for job in sweep.jobs] == ["running", "failed"]
    assert text_table(sweep).splitlines()[-1].startswith("best: none")
    for name in ("sweep_report.csv", "sweep_report.md"):
        assert (tmp_path / name).read_text()
    assert (tmp_path / "sweep_report.png").read_bytes()[:8] == PNG_MAGIC

    write_job(tmp_path, "2", ["adapter=sklearn_svc"], value=0.9)
    build(tmp_path, echo=False)
    assert (tmp_path / "sweep_report.png").read_bytes()[:8] == PNG_MAGIC


def test_job_folders_an_earlier_sweep_left_in_the_same_folder_are_left_out(tmp_path):
    """A sweep into a folder an earlier sweep used (hydra.sweep.dir=fixed): Hydra rewrites multirun.yaml
    as it starts, so job folders whose run started before that are the earlier sweep's. A folder whose
    jobs all started before it was copied, not reused: all its jobs stay."""
    from datetime import UTC, datetime

    from runner.sweep_table import collect

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    write_job(sweep, "0", ["seed=6"], value=0.90, started=now)
    write_job(sweep, "1", ["seed=4"], value=0.99)  # the earlier sweep's, started 2026-11-23
    write_job(sweep, "2", ["seed=5"], status="failed", error=("ValueError", "old"))
    found = collect(sweep)
    assert [job.name for job in found.jobs if job.status != "not started"] == ["0"] and found.earlier == ["1", "2"]
    assert found.best.name == "0"
    result = report(tmp_path, str(sweep))
    assert result.returncode == 0, result.stderr
    assert "left out: job folders 1, 2 (an earlier sweep into this folder" in result.stdout

    copied = tmp_path / "copied"
    copied.mkdir()
    (copied / "multirun.yaml").write_text("hydra: {}\n")
    write_job(copied, "0", ["seed=4"], value=0.99)
    write_job(copied, "1", ["seed=5"], value=0.98)
    assert [job.name for job in collect(copied).jobs] == ["0", "1"] and collect(copied).earlier == []


def test_missing_and_unreadable_files_are_tolerated(tmp_path):
    # no run.json (an older version): completed from metrics.json, the objective from the composed config
    write_job(tmp_path, "0", ["seed=0"], status=None, metrics={"accuracy": 0.93, **NESTED})
    write_job(tmp_path, "1", ["seed=1"], value=0.91)
    (tmp_path / "1" / "run.json").write_text('{"status": "compl')  # cut short
    write_job(tmp_path, "2", None, value=0.95)  # no overrides.yaml
    (tmp_path / "3").mkdir()  # an empty job folder
    write_job(tmp_path, "4", ["seed=4"], status="running")
    (tmp_path / "notes").mkdir()  # not a job folder

    sweep = build(tmp_path, echo=False)
    jobs = {job.name: job for job in sweep.jobs}
    assert set(jobs) == {"0", "1", "2", "3", "4"}
    assert jobs["0"].status == "completed" and jobs["0"].value == 0.93 and jobs["0"].metric == "accuracy"
    assert jobs["1"].status == "completed" and "run.json cannot be read" in jobs["1"].error
    assert jobs["1"].value == 0.91  # from metrics.json
    assert jobs["2"].overrides is None and jobs["2"].param("seed") is None
    assert jobs["3"].status == "unknown" and jobs["4"].status == "running"
    assert [job.name for job in sweep.jobs] == ["2", "0", "1", "4", "3"]
    assert sweep.swept == ["seed"]
    text = text_table(sweep)
    assert re.search(r"^\*\s+2\s+completed\s+\?\s", text, re.MULTILINE), text  # an unknown param shows as ?
    assert len(csv_rows(tmp_path)) == 5


# -- the callback --------------------------------------------------------------------------------


def test_callback_builds_the_report_at_multirun_end(grid, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(grid)}}})
    callback = SweepReport()
    callback.on_multirun_end(config=config)
    assert csv_rows(grid)[0]["job"] == "1"
    assert "best: job 1" in capsys.readouterr().out


def test_callback_builds_the_report_at_exit_when_the_sweep_raised(grid):
    callback = SweepReport()
    callback.on_multirun_start(config=OmegaConf.create({"hydra": {"sweep": {"dir": str(grid)}}}))
    atexit.unregister(callback._at_exit)
    assert not (grid / "sweep_report.csv").exists()
    callback._at_exit()  # what the interpreter runs when on_multirun_end never came
    assert (grid / "sweep_report.csv").is_file()


def test_callback_never_fails_the_multirun(tmp_path, caplog):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "gone")}}})
    with caplog.at_level(logging.WARNING, logger="runner"):
        SweepReport().on_multirun_end(config=config)
    assert "no job of this sweep ran: no sweep report written" in caplog.text
    assert "fix:" not in caplog.text  # the fix of `python -m runner.report` is not for a sweep
    assert not (tmp_path / "gone").exists()


# -- python -m runner.report ---------------------------------------------------------------------


def test_cli_rebuilds_the_report_from_the_folder(grid):
    result = report(grid.parent.parent.parent, str(grid.relative_to(grid.parent.parent.parent)))
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\*\s+1\s+completed\s+1\.0\s", result.stdout, re.MULTILINE), result.stdout
    assert "best: job 1" in result.stdout
    for name in ("sweep_report.csv", "sweep_report.md", "sweep_report.png"):
        assert (grid / name).is_file()


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_cli_without_a_sweep_folder_exits_2_with_a_message(tmp_path, where):
    folder = tmp_path / "multirun" / "2026-11-23" / "nope"
    if where == "empty":
        folder.mkdir(parents=True)
    result = report(tmp_path, str(folder))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error:"), result.stderr
    assert str(folder) in result.stderr and "fix:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / "sweep_report.csv").exists()


def test_cli_help(tmp_path):
    result = report(tmp_path, "--help")
    assert result.returncode == 0
    assert "folder" in result.stdout and "sweep_report.csv" in result.stdout


# -- a real multirun -----------------------------------------------------------------------------


def test_a_multirun_with_a_failing_job_ends_with_the_report(tmp_path):
    env = {**os.environ, "DATALOOP_PATH": str(tmp_path / "dl")}
    env.pop("HYDRA_FULL_ERROR", None)
    # C=-1 is refused by scikit-learn at train time: one failed job per seed, the others complete
    result = subprocess.run([sys.executable, "-m", "runner", "-m", "seed=0,1", "adapter.configuration.estimator.C=-1,0.1,1.0",
                             "pipeline=train_evaluate", "debug=default"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode != 0  # the sweeper raises the first job failure once every job ran
    assert "InvalidParameterError" in result.stderr
    [sweep] = [p for p in (tmp_path / "multirun").glob("*/*") if p.is_dir()]
    for name in ("sweep_report.csv", "sweep_report.md", "sweep_report.png"):
        assert (sweep / name).is_file(), name
    assert (sweep / "sweep_report.png").read_bytes()[:8] == PNG_MAGIC
    assert re.search(r"^\*\s+\d\s+completed\s", result.stdout, re.MULTILINE), result.stdout

    rows = csv_rows(sweep)
    assert len(rows) == 6
    assert [row["status"] for row in rows] == ["completed"] * 4 + ["failed"] * 2
    assert {row["adapter.configuration.estimator.C"] for row in rows[4:]} == {"-1"}
    assert all(row["error"].startswith("InvalidParameterError: The 'C' parameter") for row in rows[4:])
    assert rows[0]["best"] == "True" and not any(row["best"] == "True" for row in rows[1:])
    objectives = [float(row["objective"]) for row in rows[:4]]
    assert objectives == sorted(objectives, reverse=True)
    assert rows[0]["debug"] == "default" and rows[0]["pipeline"] == "train_evaluate"  # fixed, as given
    for row in rows:
        job = sweep / row["job"]
        record = json.loads((job / "run.json").read_text())
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert f"seed={row['seed']}" in overrides
        assert f"adapter.configuration.estimator.C={row['adapter.configuration.estimator.C']}" in overrides
        assert row["status"] == record["status"] and row["model_version"] == record["model"]["name"]
        assert float(row["seconds"]) == record["seconds"]
        if row["status"] == "completed":
            metrics = json.loads((job / "metrics.json").read_text())
            assert float(row["objective"]) == record["objective"]["value"] == metrics["accuracy"]
            for name, value in metrics.items():
                if isinstance(value, int | float):
                    assert float(row[name]) == value, name
        else:
            assert not (job / "metrics.json").exists() and row["objective"] == ""

    first = (sweep / "sweep_report.csv").read_bytes()
    (sweep / "sweep_report.csv").unlink()
    rebuilt = report(tmp_path, str(sweep.relative_to(tmp_path)))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (sweep / "sweep_report.csv").read_bytes() == first


@pytest.mark.parametrize("marker", ["multirun.yaml", "optimization_results.yaml"])
def test_cli_on_a_job_folder_or_a_date_folder_names_the_sweep(grid, marker):
    """A grid sweep's folder holds Hydra's multirun.yaml; an Optuna search's, the sweeper's results
    and no multirun.yaml: either is named as the folder to pass."""
    (grid / marker).write_text("hydra: {}\n")
    result = report(grid.parent.parent.parent, str(grid / "1"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"fix: this is job 1 of the sweep {grid}: pass that folder" in result.stderr
    result = report(grid.parent.parent.parent, str(grid.parent))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"optimization_results.yaml); e.g. {grid}" in result.stderr


def test_a_job_whose_process_was_killed_outright_is_reported_killed_not_running(tmp_path):
    """``kill -9`` leaves run.json saying ``running``; the run's lock file, which no process holds any
    more, tells the report the job is not running."""
    import signal
    import time

    env = {**os.environ, "DATALOOP_PATH": str(tmp_path / "dl")}
    process = subprocess.Popen([sys.executable, "-m", "runner", "-m", "pipeline=train", "adapter=torch_cnn",
                                "adapter.configuration.epochs=500", "seed=0,1", "hydra.sweep.dir=sw"],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    log = tmp_path / "sw" / "0" / "dlrun.log"
    try:
        deadline = time.monotonic() + 240
        while not (log.exists() and "epoch 2/500 done" in log.read_text()):
            assert time.monotonic() < deadline and process.poll() is None, "job 0 did not start training"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert json.loads((tmp_path / "sw" / "0" / "run.json").read_text())["status"] == "running"
    sweep = collect(tmp_path / "sw")
    job = next(job for job in sweep.jobs if job.name == "0")
    assert job.status == "killed" and "its process is gone without recording an end" in job.error
    assert "resume=true runs it again" in text_table(sweep)
