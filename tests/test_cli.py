"""``python -m runner`` / ``dlrun`` as a user runs them: real subprocesses, from a working directory
that is not the repository, with DATALOOP_PATH in a temp folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import sklearn
import yaml
from PIL import Image

import adapters

REPO = Path(__file__).resolve().parent.parent
CONF_DIR = REPO / "conf"
TIMEOUT = 300
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME = re.compile(r"\d{2}-\d{2}-\d{2}(-\d+)?")


def dlrun(tmp_path: Path, *args: str, command: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATALOOP_PATH": str(tmp_path / "dl")}
    env.pop("HYDRA_FULL_ERROR", None)
    command = command or [sys.executable, "-m", "runner"]
    return subprocess.run([*command, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def terminated_when(tmp_path: Path, seen, *args: str, signum: int = signal.SIGTERM) -> tuple[int, str]:
    """``python -m runner *args``, sent ``signum`` once ``seen(line)`` holds for a line of its output
    (unbuffered, so the line comes as it is printed): (exit status, stderr)."""
    env = {**os.environ, "DATALOOP_PATH": str(tmp_path / "dl"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in iter(process.stdout.readline, ""):
            if seen(line):
                break
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    return process.returncode, stderr


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def output_dirs(stdout: str) -> list[Path]:
    return [Path(line.split(":", 1)[1].strip()) for line in stdout.splitlines() if line.startswith("outputs: ")]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def run_folders(tmp_path: Path, kind: str) -> list[Path]:
    """``<kind>/<date>/<time>/`` folders under the working directory."""
    found = sorted(p for p in (tmp_path / kind).glob("*/*") if p.is_dir())
    for folder in found:
        assert DATE.fullmatch(folder.parent.name), folder
        assert TIME.fullmatch(folder.name), folder
    return found


def job_folders(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def _repo_run_folders() -> set[Path]:
    return {p for kind in ("outputs", "multirun") for p in (REPO / kind).glob("*/*")}


def _ours(folder: Path, tmp_path: Path) -> bool:
    """A run folder made by a run from ``tmp_path``: Hydra records the working directory in it."""
    records = [folder / ".hydra" / "hydra.yaml", folder / "multirun.yaml", *folder.glob("*/.hydra/hydra.yaml")]
    texts = [record.read_text() for record in records if record.is_file()]
    return not texts or any(str(tmp_path) in text for text in texts)


@contextmanager
def repo_untouched(tmp_path: Path):
    """No run folder of a run from ``tmp_path`` lands in the repository (others may run there meanwhile)."""
    before = _repo_run_folders()
    yield
    ours = sorted(p for p in _repo_run_folders() - before if _ours(p, tmp_path))
    assert not ours, f"runs from {tmp_path} wrote into the repository: {ours}"


# -- single runs ---------------------------------------------------------------------------------


def test_default_run_trains_evaluates_and_writes_its_run_folder(tmp_path):
    with repo_untouched(tmp_path):
        result = ok(dlrun(tmp_path))

    lines = result.stdout.splitlines()
    assert any(re.match(r"accuracy\s+0\.\d{4}$", line) for line in lines), result.stdout
    assert any(line.startswith("model version: ") for line in lines)
    [out] = output_dirs(result.stdout)
    assert out.is_absolute()
    [folder] = run_folders(tmp_path, "outputs")
    assert out == folder.resolve()
    assert not (tmp_path / "multirun").exists()

    metrics = read_json(out / "metrics.json")
    assert metrics["accuracy"] >= 0.9
    png = out / "confusion_matrix.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG" and min(image.size) >= 100
    model = read_json(out / "model.json")
    assert model["status"] == "trained" and model["artifacts"] == ["model.skops"]
    assert sum(read_json(out / "data.json")["items_per_subset"].values()) == 1797
    config = yaml.safe_load((out / ".hydra" / "config.yaml").read_text())
    assert config["batch_size"] == 32
    assert config["adapter"]["_target_"] == "adapters.sklearn_classifier.SklearnImageClassifier"
    log = (out / "dlrun.log").read_text()
    assert "step train" in log and "step evaluate" in log
    # what the console shows beside the log lines is kept there too: the metrics table, the version, the outputs
    assert f"outputs: {out}" in log and f"model version: {model['name']}" in log
    assert re.search(r"\] - metric +value\n-+ +-+\naccuracy +0\.\d{4}$", log, re.MULTILINE), log
    # the platform is under DATALOOP_PATH, not in the working directory
    assert (tmp_path / "dl" / "local" / "platform.db").is_file()
    # what it ran on: the store, Python and package versions, and the commit of the adapter's code
    ran_on = read_json(out / "run.json")["environment"]
    assert ran_on["store"] == str(tmp_path / "dl" / "local") and ran_on["python"] == sys.version.split()[0]
    assert ran_on["packages"]["scikit-learn"] == sklearn.__version__ and "adapter-runner" in ran_on["packages"]
    head = subprocess.run(["git", "-C", str(Path(adapters.__file__).parent), "rev-parse", "HEAD"],
                          capture_output=True, text=True)
    assert (ran_on["code"] or {}).get("commit") == (head.stdout.strip() if head.returncode == 0 else None)
    # the version names the run folder that made it, and shows its configuration and evaluation
    shown = json.loads(ok(dlrun(tmp_path, "show", model["name"], "--json",
                                command=[sys.executable, "-m", "runner.store"])).stdout)
    assert shown["run"] == str(out) and shown["adapter"]["option"] == "sklearn"
    assert shown["configuration"] == model["configuration"] and shown["cloned_from"] == "sklearn-digits"
    assert shown["evaluation"]["metrics"]["accuracy"] == metrics["accuracy"]
    assert [a["name"] for a in shown["artifacts"]] == ["model.skops"] and shown["artifacts"][0]["size"] > 0
    rows = json.loads(ok(dlrun(tmp_path, "models", "--json", command=[sys.executable, "-m", "runner.store"])).stdout)
    assert {r["name"]: r["run"] for r in rows} == {"sklearn-digits": None, model["name"]: str(out)}

    # evaluating that version again with a configuration key given on the command line: it applies to
    # that run; one its weights depend on fails there, and the error names the change
    again = dlrun(tmp_path, "pipeline=evaluate", f"model.name={model['name']}", "adapter.configuration.image_size=4",
                  "batch_size=8", "hydra.run.dir=again")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "X has 16 features" in again.stderr
    assert "note: this run changed the version's configuration, for this run only: image_size=4;" in again.stderr
    assert read_json(tmp_path / "again" / "run.json")["configuration_changes"] == {"image_size": 4}  # not batch_size
    shown = json.loads(ok(dlrun(tmp_path, "show", model["name"], "--json",
                                command=[sys.executable, "-m", "runner.store"])).stdout)
    assert shown["configuration"] == model["configuration"]  # the version keeps its own


def test_a_run_folder_holding_files_no_run_wrote_is_refused_and_they_are_kept(tmp_path):
    (tmp_path / "proj").mkdir()
    for name in ("data.json", "metrics.json"):
        (tmp_path / "proj" / name).write_text('{"mine": 1}')
    refused = dlrun(tmp_path, "hydra.run.dir=proj", "pipeline=train")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"error: the run folder {tmp_path / 'proj'} holds metrics.json, data.json, files this run would write " \
           "over, and no run.json" in refused.stderr, refused.stderr
    assert all(read_json(tmp_path / "proj" / name) == {"mine": 1} for name in ("data.json", "metrics.json"))
    assert not (tmp_path / "dl" / "local").exists()  # refused before anything was stored


def test_cfg_job_prints_the_composed_config_and_creates_nothing(tmp_path):
    result = ok(dlrun(tmp_path, "--cfg", "job"))
    assert "batch_size:" in result.stdout
    assert "_target_: adapters.sklearn_classifier.SklearnImageClassifier" in result.stdout
    config = yaml.safe_load(result.stdout)
    assert config["pipeline"]["steps"] == ["train", "evaluate"]
    assert "hydra" not in config
    assert not (tmp_path / "dl" / "local").exists()
    assert not (tmp_path / "outputs").exists()


def test_help_lists_the_groups_and_their_options(tmp_path):
    result = ok(dlrun(tmp_path, "--help"))
    lines = result.stdout.splitlines()
    groups = {path.parent.name for path in CONF_DIR.glob("*/*.yaml")} - {"hydra"}
    for group in groups:
        options = sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in lines, group
    # the group line (the config dump below it has a "pipeline:" line too)
    pipeline = next(line for line in lines if line.startswith("pipeline:"))
    assert "train_evaluate" in pipeline
    assert "python -m runner" in result.stdout  # the footer's examples
    assert "python -m runner.store models" in result.stdout and "python -m runner.report" in result.stdout
    assert "hydra/launcher=joblib" in result.stdout
    assert not (tmp_path / "dl" / "local").exists()
    # the options of a config folder of the user's are listed too, however it is given
    (tmp_path / "mine" / "adapter").mkdir(parents=True)
    (tmp_path / "mine" / "adapter" / "mine.yaml").write_text((CONF_DIR / "adapter" / "sklearn.yaml").read_text())
    for folder in ([f"hydra.searchpath=[file://{tmp_path / 'mine'}]"], ["--config-dir", str(tmp_path / "mine")]):
        lines = ok(dlrun(tmp_path, *folder, "--help")).stdout.splitlines()
        adapters = sorted(["mine", *(path.stem for path in (CONF_DIR / "adapter").glob("*.yaml"))])
        assert f"adapter: {', '.join(adapters)}" in lines, folder


def test_the_dlrun_console_script(tmp_path):
    executable = shutil.which("dlrun")
    if executable is None:
        pytest.skip("the dlrun console script is not on PATH (pip install -e . puts it there)")
    result = ok(dlrun(tmp_path, "--cfg", "job", command=[executable]))
    assert "_target_: adapters.sklearn_classifier.SklearnImageClassifier" in result.stdout
    assert "batch_size:" in result.stdout


# -- sweeps --------------------------------------------------------------------------------------


def test_a_grid_multirun_trains_one_version_per_job(tmp_path):
    with repo_untouched(tmp_path):
        result = ok(dlrun(tmp_path, "-m", "adapter=sklearn,sklearn_svc", "seed=0"))

    [sweep] = run_folders(tmp_path, "multirun")
    jobs = job_folders(sweep)
    assert [job.name for job in jobs] == ["0", "1"]
    assert output_dirs(result.stdout) == [job.resolve() for job in jobs]
    models = []
    for job in jobs:
        assert read_json(job / "metrics.json")["accuracy"] >= 0.9
        models.append(read_json(job / "model.json"))
    assert len({m["id"] for m in models}) == 2
    assert len({m["name"] for m in models}) == 2
    assert models[0]["name"].startswith("sklearn-digits-")
    assert models[1]["name"].startswith("sklearn-svc-digits-")
    assert models[1]["configuration"]["estimator"]["_target_"] == "sklearn.svm.SVC"
    assert not (tmp_path / "outputs").exists()

    # a job's version names the command that runs it again; that command makes the same model
    shown = json.loads(ok(dlrun(tmp_path, "show", models[1]["name"], "--json",
                                command=[sys.executable, "-m", "runner.store"])).stdout)
    assert shown["run"] == str(jobs[1].resolve())
    assert shown["rerun"] == f"cd {tmp_path} && python -m runner adapter=sklearn_svc seed=0"
    again = ok(dlrun(tmp_path, command=["bash", "-c", shown["rerun"].replace("&& python ", f"&& {sys.executable} ")]))
    [out] = output_dirs(again.stdout)
    assert read_json(out / "model.json")["configuration"] == models[1]["configuration"]
    assert read_json(out / "metrics.json")["accuracy"] == read_json(jobs[1] / "metrics.json")["accuracy"]
    # side by side, the two jobs' versions show the override that set them apart, not the one they share
    compared = ok(dlrun(tmp_path, "compare", models[0]["name"], models[1]["name"],
                        command=[sys.executable, "-m", "runner.store"])).stdout
    assert ["run", "overrides", "adapter=sklearn", "adapter=sklearn_svc"] in [line.split() for line in
                                                                               compared.splitlines()]

    # the versions keep how their runs were launched: with the run folders gone, the commands stay
    jobs[1].rename(tmp_path / "elsewhere")
    gone = json.loads(ok(dlrun(tmp_path, "show", models[1]["name"], "--json",
                               command=[sys.executable, "-m", "runner.store"])).stdout)
    assert gone["rerun"] == shown["rerun"] and gone["use"] == shown["use"] and set(gone["use"]) == {"evaluate", "predict"}
    compared = ok(dlrun(tmp_path, "compare", models[0]["name"], models[1]["name"],
                        command=[sys.executable, "-m", "runner.store"])).stdout
    assert ["run", "overrides", "adapter=sklearn", "adapter=sklearn_svc"] in [line.split() for line in
                                                                               compared.splitlines()]


@pytest.mark.parametrize("args", [(), ("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1")],
                         ids=["run", "joblib sweep"])
def test_a_run_whose_console_reader_leaves_goes_on_to_its_end(tmp_path, args):
    # | head -0: the reader is gone before the first line; the run still trains, evaluates and writes
    env = {**os.environ, "DATALOOP_PATH": str(tmp_path / "dl")}
    process = subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    code, stderr = process.wait(timeout=TIMEOUT), process.stderr.read()
    assert (code, stderr) == (0, ""), stderr
    folders = job_folders(run_folders(tmp_path, "multirun")[0]) if args else run_folders(tmp_path, "outputs")
    assert len(folders) == (2 if args else 1)
    for folder in folders:
        assert read_json(folder / "run.json")["status"] == "completed"
        assert read_json(folder / "metrics.json")["accuracy"] >= 0.9
        assert "step evaluate" in (folder / "dlrun.log").read_text()
    if args:  # the jobs' processes started after the parent met the closed pipe: they write to nowhere
        assert (folders[0].parent / "sweep_report.csv").is_file()
    else:
        assert "the console's reader has gone: the run goes on, logging to dlrun.log only" in \
            (folders[0] / "dlrun.log").read_text()


def test_an_optuna_sweep(tmp_path):
    result = ok(dlrun(tmp_path, "hparams_search=digits_optuna", "hydra.sweeper.n_trials=3"))

    [sweep] = run_folders(tmp_path, "multirun")
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] >= 0.9
    assert set(results["best_params"]) == {"adapter.configuration.estimator.C", "adapter.configuration.image_size"}
    jobs = job_folders(sweep)
    assert [job.name for job in jobs] == ["0", "1", "2"]
    accuracies = [read_json(job / "metrics.json")["accuracy"] for job in jobs]
    # the sweeper saw what main returned: the objective metric of each job
    assert results["best_value"] == pytest.approx(max(accuracies))
    assert len(output_dirs(result.stdout)) == 3
    # a trial's version is run again alone, not as a new search
    trial = read_json(jobs[0] / "model.json")["name"]
    rerun = json.loads(ok(dlrun(tmp_path, "show", trial, "--json",
                                command=[sys.executable, "-m", "runner.store"])).stdout)["rerun"]
    assert re.fullmatch(rf"cd {tmp_path} && python -m runner adapter\.configuration\.estimator\.C=[0-9.e-]+ "
                        r"adapter\.configuration\.image_size=\d+ hparams_search=digits_optuna hydra\.mode=RUN", rerun)


def test_a_stored_study_is_not_resumed_with_other_settings(tmp_path):
    """Its trials' objective values would not compare with the new ones: refused before Hydra starts,
    naming what changed; settings that do not change what a trial measures may differ."""
    search = ["hparams_search=digits_optuna", "hydra.sweeper.n_trials=1", "hydra.sweeper.study_name=resumed"]
    ok(dlrun(tmp_path, *search))
    refused = dlrun(tmp_path, *search, "objective.metric=balanced_accuracy")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("error: study 'resumed' holds 1 finished trials run with other settings "
                                     "(objective.metric: accuracy -> balanced_accuracy)")
    assert "hydra.sweeper.study_name=<new name>" in refused.stderr
    # the sweeper's own direction, set apart from objective.direction: Optuna would raise for the stored study
    refused = dlrun(tmp_path, *search, "hydra.sweeper.direction=minimize")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("error: study 'resumed' was made to maximize its objective; this search would "
                                     "minimize it"), refused.stderr
    assert "hydra.sweeper.direction=maximize to resume this one" in refused.stderr and "Traceback" not in refused.stderr
    # the same values written out (defaults), and settings free to change: resumed, 2 trials now
    resumed = ok(dlrun(tmp_path, *search, "batch_size=64", "seed=0", "subsets=by_dir"))
    assert len(run_folders(tmp_path, "multirun")) == 2
    found = re.search(r"^study 'resumed': 2 trials \(1 from its earlier runs, resumed here; this sweep's job is "
                      r"trial 1\); the study's best: accuracy 0\.\d{4}, trial [01], from (this sweep|an earlier run "
                      r"of it), model version (\S+)$", resumed.stdout, re.MULTILINE)
    assert found, resumed.stdout
    versions = [json.loads((folder / "0" / "run.json").read_text())["model"]["name"]
                for folder in run_folders(tmp_path, "multirun")]
    assert found.group(2) in versions  # the run that scored the best trial, this sweep's or the earlier one's
    assert (run_folders(tmp_path, "multirun")[-1] / "sweep_report.md").read_text().endswith(f"\n\n{found.group(0)}\n")
    # one trial's overrides run again as a single run (README: Reproduce a run): no search, no check
    single = ok(dlrun(tmp_path, *search, "objective.metric=balanced_accuracy", "hydra.mode=RUN"))
    assert "balanced_accuracy" in single.stdout and len(run_folders(tmp_path, "multirun")) == 2
    # a search space Optuna refuses for the drawn parameters (every new trial would fail): refused too;
    # a choice of the same values, or a range widened, resumes
    for sweep, before, after in [
            ("adapter.configuration.image_size=choice(6,8)", "choice(6, 8, 12)", "choice(6, 8)"),
            ("adapter.configuration.estimator.C=interval(0.01,10.0)",
             "tag(log, interval(0.01, 10.0))", "interval(0.01, 10.0)")]:
        refused = dlrun(tmp_path, *search, sweep)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.startswith(
            "error: study 'resumed' holds 2 trials that drew from another search space "
            f"(adapter.configuration.{'image_size' if 'image' in sweep else 'estimator.C'}: {before} -> {after})")
        assert "hydra.sweeper.study_name=<new name>" in refused.stderr
    ok(dlrun(tmp_path, *search, "adapter.configuration.image_size=6,8,12",
             "adapter.configuration.estimator.C=tag(log,interval(0.001,100))"))
    assert len(run_folders(tmp_path, "multirun")) == 3


def test_a_search_over_keys_the_adapter_lacks_is_refused_and_failed_trials_do_not_hold_a_study(tmp_path):
    """digits_optuna varies the scikit-learn estimator's C: with adapter=torch_cnn every trial would
    fail, so it stops before the study is made. A study whose trials all failed holds no value to
    compare with: it resumes with other settings."""
    import optuna

    refused = dlrun(tmp_path, "hparams_search=digits_optuna", "adapter=torch_cnn", "hydra.sweeper.n_trials=2")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith(
        "error: the search varies adapter.configuration.estimator.C, adapter.configuration.image_size, which this "
        "configuration (adapter=torch_cnn) does not have: every trial would fail\n"
        f"  where: hparams_search=digits_optuna ({CONF_DIR / 'hparams_search' / 'digits_optuna.yaml'}): "
        "hydra.sweeper.params\n"
        "  fix: pick a search made for this adapter (hparams_search: digits_optuna, torch_cnn_optuna)"), refused.stderr
    assert not (tmp_path / "dl" / "studies" / "optuna.db").exists()
    # a misspelt key swept on the command line: named there, with the key likely meant
    refused = dlrun(tmp_path, "hparams_search=digits_optuna", "adapter.configuration.estimator.CC=interval(0.1,1.0)")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith(
        "error: the search varies adapter.configuration.estimator.CC (did you mean adapter.configuration.estimator.C?)"
        ", which this configuration (adapter=sklearn) does not have: every trial would fail\n"
        "  where: adapter.configuration.estimator.CC=interval(0.1,1.0)\n"), refused.stderr

    search = ["hparams_search=digits_optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=failing"]
    failed = dlrun(tmp_path, *search, "adapter.configuration.estimator.max_iter=-3")  # scikit-learn refuses it
    assert failed.returncode == 1 and "max_iter" in failed.stderr, failed.stdout + failed.stderr
    ok(dlrun(tmp_path, *search))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="failing", storage=f"sqlite:///{tmp_path / 'dl' / 'studies' / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]


def test_a_search_every_trial_of_which_would_fail_is_refused_before_its_study_is_made(tmp_path):
    """A range Optuna cannot draw from (low above high, a log scale from 0), on the command line or in a
    search's file, and a misspelt objective.metric: each stops the search before a study or a sweep
    folder exists, naming the key, where it was given and the fix."""
    refused = dlrun(tmp_path, "hparams_search=digits_optuna", "adapter.configuration.estimator.C=tag(log, interval(10.0, 0.01))")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr == (
        "error: adapter.configuration.estimator.C: the interval runs from 10.0 down to 0.01: Optuna draws from low to "
        "high\n  where: adapter.configuration.estimator.C=tag(log, interval(10.0, 0.01))\n"
        "  fix: put the low end first: interval(0.01, 10.0)\n")
    folder = tmp_path / "conf" / "hparams_search"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text("# @package _global_\ndefaults:\n  - digits_optuna\nhydra:\n  sweeper:\n"
                                      "    params:\n      adapter.configuration.estimator.C: tag(log, interval(0, 1))\n")
    refused = dlrun(tmp_path, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "hparams_search=mine")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith(
        "error: adapter.configuration.estimator.C: a log-scale interval must start above 0, this one starts at 0.0\n"
        f"  where: hparams_search=mine ({folder / 'mine.yaml'}): hydra.sweeper.params.adapter.configuration.estimator.C\n"
    ), refused.stderr
    # a misspelt key in the search's own file: the file named, and the fix is to correct it there
    (folder / "typo.yaml").write_text("# @package _global_\ndefaults:\n  - digits_optuna\nhydra:\n  sweeper:\n"
                                      "    params:\n      adapter.configuration.estimator.CC: interval(0.1, 1)\n")
    refused = dlrun(tmp_path, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "hparams_search=typo")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"  where: hparams_search=typo ({folder / 'typo.yaml'}): hydra.sweeper.params\n  fix: correct the key " \
           "there, with params this configuration has" in refused.stderr, refused.stderr
    refused = dlrun(tmp_path, "hparams_search=digits_optuna", "objective.metric=acuracy")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("error: objective.metric 'acuracy' is not a metric the evaluate step computes "
                                     "(did you mean accuracy?)\n  where: objective.metric\n"), refused.stderr
    assert not (tmp_path / "dl" / "studies" / "optuna.db").exists() and not (tmp_path / "multirun").exists()


def test_an_interrupted_search_leaves_no_trial_running_in_its_study(tmp_path):
    """SIGTERM during the second batch of trials: the trials it had asked for are marked FAIL, not left
    RUNNING for good (a resumed search would count them)."""
    import optuna

    batches = []

    def second_batch_asked_for(line: str) -> bool:
        batches.append("Launching 2 jobs" in line)
        return sum(batches) == 2 and "#2 :" in line

    returncode, stderr = terminated_when(tmp_path, second_batch_asked_for, "hparams_search=digits_optuna",
                                         "hydra.sweeper.study_name=stopped")
    assert returncode == 128 + 15, stderr
    assert "study 'stopped': of the trials interrupted, 0 had finished (told their value) and 2 are marked FAIL; " \
           "the same command continues the study" in stderr
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="stopped", storage=f"sqlite:///{tmp_path / 'dl' / 'studies' / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]


def test_a_search_that_fails_leaves_no_trial_running_in_its_study(tmp_path):
    """Resumed with another search space for a parameter, past the check made before the search (which
    skips runs given another primary config: only Hydra composes those), Optuna's sweeper fails as it
    asks for the trials: they are marked FAIL rather than left RUNNING for good."""
    import optuna

    search = ["hparams_search=digits_optuna", "hydra.sweeper.study_name=space", "hydra.sweeper.n_trials=2"]
    ok(dlrun(tmp_path, *search))
    result = dlrun(tmp_path, "--config-name", "config", *search, "adapter.configuration.image_size=choice(16,32)")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "study 'space': of the trials stopped by that error" in result.stderr
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="space", storage=f"sqlite:///{tmp_path / 'dl' / 'studies' / 'optuna.db'}")
    assert "RUNNING" not in [t.state.name for t in study.trials]


@pytest.mark.parametrize("config_name", [[], ["--config-name", "config"]], ids=["checked-first", "only-hydra-composes"])
def test_an_optuna_search_without_an_evaluate_step_stops_before_it_trains(tmp_path, config_name):
    """Refused once before the search starts; where only Hydra composes the config, each trial stops
    with the same message before it trains."""
    result = dlrun(tmp_path, *config_name, "hparams_search=digits_optuna", "hydra.sweeper.n_trials=2", "pipeline=train")
    assert result.returncode == (1 if config_name else 2), result.stdout + result.stderr
    message = "error: an Optuna search needs each trial's objective, and pipeline steps ['train']"
    assert message in result.stderr
    if not config_name:
        assert result.stderr.startswith(message) and result.stderr.count("error:") == 1
        assert not (tmp_path / "dl" / "studies" / "optuna.db").exists()  # no study created
    assert "Traceback" not in result.stderr and "float-castable" not in result.stderr
    assert not (tmp_path / "dl" / "local").exists()  # nothing imported, no version trained


def test_every_experiment_in_one_multirun(tmp_path):
    result = ok(dlrun(tmp_path, "-m", "experiment=glob(*)"))

    experiments = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))
    [sweep] = run_folders(tmp_path, "multirun")
    jobs = job_folders(sweep)
    assert len(jobs) == len(experiments) == len(output_dirs(result.stdout))
    ran = []
    for job in jobs:
        assert (job / "metrics.json").is_file()
        [override] = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        ran.append(override.removeprefix("experiment="))
    assert sorted(ran) == experiments


# -- bad configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("override", ["debug=true", "adapter=3", "experiment=null"])
def test_a_group_given_a_value_that_is_not_an_option_name_lists_the_options(tmp_path, override):
    result = dlrun(tmp_path, override)
    assert result.returncode == 2, result.stdout + result.stderr
    group = override.split("=")[0]
    assert result.stderr.startswith(f"error: {group} is a config group"), result.stderr
    assert f"where: {override}" in result.stderr and "Traceback" not in result.stderr
    options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    assert f"one of {options}" in result.stderr


@pytest.mark.parametrize(("override", "says"), [
    ("adapter=nope", "adapter has no option 'nope'"),
    ("adapter=sklearn,skleran_svc", "adapter has no option 'skleran_svc' (did you mean adapter=sklearn_svc?)"),
    ("+experiment=digit_logreg", "experiment has no option 'digit_logreg' (did you mean experiment=digits_logreg?)"),
])
def test_an_unknown_group_option_is_a_config_error_with_the_options(tmp_path, override, says):
    result = dlrun(tmp_path, "-m" if "," in override else "--cfg=job", override)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {says}"), result.stderr
    assert "one of ['" in result.stderr and not (tmp_path / "dl" / "local").exists()


def test_an_option_from_the_users_config_folder_is_known_too(tmp_path):
    extra = tmp_path / "extra" / "adapter"
    extra.mkdir(parents=True)
    (extra / "mine.yaml").write_text((CONF_DIR / "adapter" / "sklearn.yaml").read_text().replace("name: sklearn",
                                                                                                 "name: mine"))
    result = ok(dlrun(tmp_path, "--cfg", "job", "adapter=mine", f"hydra.searchpath=[file://{tmp_path / 'extra'}]"))
    assert "name: mine" in result.stdout
    result = ok(dlrun(tmp_path, "--config-dir", str(tmp_path / "extra"), "--cfg", "job", "adapter=mine"))
    assert "name: mine" in result.stdout
    misspelt = dlrun(tmp_path, "adapter=mien", f"hydra.searchpath=[file://{tmp_path / 'extra'}]")
    assert misspelt.returncode == 2, misspelt.stdout + misspelt.stderr
    assert misspelt.stderr.startswith("error: adapter has no option 'mien' (did you mean adapter=mine?)")
    assert "'mine'" in misspelt.stderr and "'sklearn'" in misspelt.stderr


def test_the_rerun_of_a_version_keeps_the_users_config_folders(tmp_path):
    extra = tmp_path / "extra" / "adapter"
    extra.mkdir(parents=True)
    (extra / "mine.yaml").write_text((CONF_DIR / "adapter" / "sklearn.yaml").read_text().replace("name: sklearn",
                                                                                                 "name: mine"))
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'other'}]"
    (tmp_path / "other").mkdir()
    first = ok(dlrun(tmp_path, "--config-dir", "extra", "adapter=mine", "seed=3", searchpath,
                     "pipeline=train", "hydra.run.dir=first"))
    version = read_json(output_dirs(first.stdout)[0] / "model.json")
    shown = json.loads(ok(dlrun(tmp_path, "show", version["name"], "--json",
                                command=[sys.executable, "-m", "runner.store"])).stdout)
    rerun = shown["rerun"]
    assert rerun == (f"cd {tmp_path} && python -m runner --config-dir {tmp_path / 'extra'} adapter=mine seed=3 "
                     f"pipeline=train '{searchpath}'")  # not where its outputs went
    assert shown["rerun_changes"] == []
    # a config file edited since: the rerun would compose another config, and show says which keys
    mine = extra / "mine.yaml"
    mine.write_text(mine.read_text().replace("C: 1.0", "C: 2.5"))
    after_edit = ok(dlrun(tmp_path, "show", version["name"], command=[sys.executable, "-m", "runner.store"])).stdout
    assert ("rerun composes  differently now (the config files changed since; its .hydra/config.yaml holds what it "
            "ran with): adapter.configuration.estimator.C: 1.0 -> 2.5") in after_edit, after_edit
    mine.write_text(mine.read_text().replace("C: 2.5", "C: 1.0"))
    again = ok(dlrun(tmp_path / "other", command=["bash", "-c", rerun.replace("&& python ", f"&& {sys.executable} ")]))
    [out] = output_dirs(again.stdout)
    assert out.parent.parent == tmp_path / "outputs"
    assert read_json(out / "model.json")["configuration"] == version["configuration"]


def _adapter_mine_in_a_config_folder(tmp_path: Path) -> str:
    """An adapter class of the user's own (``mine_adapter.Mine``) with its option ``adapter=mine`` in a
    config folder: the ``hydra.searchpath`` override that adds the folder."""
    (tmp_path / "mine_adapter.py").write_text("from adapters.sklearn_classifier import SklearnImageClassifier\n\n\n"
                                              "class Mine(SklearnImageClassifier):\n    pass\n")
    extra = tmp_path / "extra" / "adapter"
    extra.mkdir(parents=True)
    (extra / "mine.yaml").write_text((CONF_DIR / "adapter" / "sklearn.yaml").read_text().replace(
        "adapters.sklearn_classifier.SklearnImageClassifier", "mine_adapter.Mine").replace("name: sklearn", "name: mine"))
    return f"hydra.searchpath=[file://{tmp_path / 'extra'}]"


def test_a_version_of_an_adapter_from_a_config_folder_names_that_folder_when_run_without_it(tmp_path):
    searchpath = _adapter_mine_in_a_config_folder(tmp_path)
    with (tmp_path / "extra" / "adapter" / "mine.yaml").open("a") as option:
        option.write("  shade: dark\n")  # a configuration key the default adapter does not have
    first = ok(dlrun(tmp_path, "adapter=mine", searchpath, "pipeline=train"))
    version = read_json(output_dirs(first.stdout)[0] / "model.json")["name"]
    # a misspelt version is named first, not the default adapter's lack of embed
    refused = dlrun(tmp_path, "pipeline=embed", f"model.name={version[:-1]}x")
    assert refused.returncode == 2 and refused.stderr.startswith(
        f"error: no model named '{version[:-1]}x' in the local platform at "), refused.stderr
    assert f"(did you mean model.name={version}?)" in refused.stderr and "embed" not in refused.stderr
    refused = dlrun(tmp_path, "pipeline=predict", f"model.name={version}")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith(f"error: model '{version}' was trained by adapter=mine (mine_adapter.Mine), an "
                                     "option of a config folder this run does not search"), refused.stderr
    assert f"fix: adapter=mine '{searchpath}' (the config folder its training run had); " in refused.stderr
    ok(dlrun(tmp_path, "pipeline=predict", f"model.name={version}", "adapter=mine", searchpath))
    # with the folder given, the run takes the option that trained the version itself, and says so
    taken = ok(dlrun(tmp_path, "pipeline=predict", f"model.name={version}", searchpath))
    assert taken.stderr.startswith("adapter=mine: the adapter that trained the version (adapter=<option> chooses "
                                   "another)\n"), taken.stderr
    assert "step predict: model " + version in taken.stdout + taken.stderr
    # a key of its adapter's only, set for this run, is found there too (Hydra would refuse it for the default's)
    taken = ok(dlrun(tmp_path, "pipeline=predict", f"model.name={version}", searchpath, "adapter.configuration.shade=light"))
    assert taken.stderr.startswith("adapter=mine: the adapter that trained the version"), taken.stderr
    assert "shade: 'dark' -> 'light'" in taken.stdout + taken.stderr
    # another adapter named: refused, naming the one that trained it
    refused = dlrun(tmp_path, "pipeline=predict", f"model.name={version}", "adapter=sklearn", searchpath)
    assert refused.returncode == 2 and "fix: adapter=mine (or no adapter= at all: a run that does not train takes " \
        "the one that trained its version); " in refused.stderr, refused.stderr


def test_a_version_names_the_commands_that_evaluate_and_predict_with_all_it_was_trained_with(tmp_path):
    """One error, and one line of ``runner.store show``, give the whole command: the adapter from a
    config folder, the dataset with its import settings and the metrics set, not one at a time."""
    searchpath = _adapter_mine_in_a_config_folder(tmp_path)
    first = ok(dlrun(tmp_path, "adapter=mine", searchpath, "dataset.name=digits2", "dataset.source.seed=1",
                     "metrics=minimal", "pipeline=train"))
    version = read_json(output_dirs(first.stdout)[0] / "model.json")["name"]
    tail = (f"model.name={version} adapter=mine dataset=digits metrics=minimal dataset.name=digits2 "
            f"dataset.source.seed=1 '{searchpath}'")
    shown = json.loads(ok(dlrun(tmp_path, "show", version, "--json", command=[sys.executable, "-m", "runner.store"])
                          ).stdout)["use"]
    assert shown == {"evaluate": f"cd {tmp_path} && python -m runner pipeline=evaluate {tail}",
                     "predict": f"cd {tmp_path} && python -m runner pipeline=predict {tail}".replace(
                         " metrics=minimal", "").replace(" '", " subsets=model '")}  # no metrics set: nothing scored
    printed = ok(dlrun(tmp_path, "show", version, command=[sys.executable, "-m", "runner.store"])).stdout
    assert re.search(rf"^predict +{re.escape(shown['predict'])}$", printed, re.MULTILINE), printed
    refused = dlrun(tmp_path, "pipeline=evaluate", f"model.name={version}")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.rstrip().endswith(f"; or, with all it was trained with: {shown['evaluate']}"), refused.stderr
    again = ok(dlrun(tmp_path, command=["bash", "-c", shown["evaluate"].replace(
        "&& python ", f"&& {sys.executable} ")]))
    assert read_json(output_dirs(again.stdout)[0] / "metrics.json")["accuracy"] > 0.8
    # with its config folder alone, the run takes the adapter and the dataset it was trained with, and says so
    taken = ok(dlrun(tmp_path, "pipeline=evaluate", f"model.name={version}", searchpath))
    assert taken.stderr.startswith(
        "adapter=mine: the adapter that trained the version (adapter=<option> chooses another)\n"
        "dataset.name=digits2 dataset.source=null: the dataset the version was trained on, as stored (dataset=<option> "
        "chooses another)\n"), taken.stderr
    assert "on dataset 'digits2': subset 'test'" in taken.stdout + taken.stderr
    assert "importing dataset 'digits'" not in taken.stdout + taken.stderr  # the default's import is not made
    # a predict run reads the subsets option as given (by_dir): where a subset is empty, the version's own is a fix
    empty = dlrun(tmp_path, "pipeline=predict", f"model.name={version}", "adapter=mine", searchpath,
                  "dataset.name=digits2", "dataset.source=null", "~subsets.test.filter",
                  "+subsets.test.filter={dir: /nowhere}")
    assert empty.returncode == 2 and "subsets=model, the subsets the version was trained with" in empty.stderr, \
        empty.stderr


def test_a_yaml_error_in_the_users_config_folder_is_one_message_with_file_and_line(tmp_path):
    extra = tmp_path / "extra" / "adapter"
    extra.mkdir(parents=True)
    (extra / "mine.yaml").write_text((CONF_DIR / "adapter" / "sklearn.yaml").read_text() + "configuration:\n  C: 2\n")
    for folder_args in ([f"hydra.searchpath=[file://{tmp_path / 'extra'}]"], ["--config-dir", str(tmp_path / "extra")]):
        result = dlrun(tmp_path, *folder_args, "adapter=mine")
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.splitlines()
        assert lines[0] == "error: a config file is not valid YAML: found duplicate key configuration", result.stderr
        assert re.fullmatch(rf"  where: {re.escape(str(extra / 'mine.yaml'))}, line \d+, column 1", lines[1])
        assert "Traceback" not in result.stderr and not (tmp_path / "dl" / "local").exists()


def test_a_misspelt_key_in_the_users_adapter_file_names_the_file(tmp_path):
    extra = tmp_path / "extra" / "adapter"
    extra.mkdir(parents=True)
    (extra / "mine.yaml").write_text((CONF_DIR / "adapter" / "sklearn.yaml").read_text().replace(
        "configuration:", "configuraton:"))
    result = dlrun(tmp_path, f"hydra.searchpath=[file://{tmp_path / 'extra'}]", "adapter=mine")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: adapter.configuraton is not a key the runner reads (did you mean "
                                    "adapter.configuration?)\n"
                                    f"  where: adapter.configuraton, written in {extra / 'mine.yaml'}\n"), result.stderr
    # a key set under the right name, which Hydra refuses: the hint is the file's misspelling, not to follow it
    result = dlrun(tmp_path, f"hydra.searchpath=[file://{tmp_path / 'extra'}]", "adapter=mine",
                   "adapter.configuration.estimator.C=2")
    assert result.returncode == 2, result.stdout + result.stderr  # Hydra's refusal: a config that cannot run
    assert "hint: adapter.configuraton is not a key the runner reads (did you mean adapter.configuration?)\n" \
           f"  where: adapter.configuraton, written in {extra / 'mine.yaml'}" in result.stderr, result.stderr


def test_a_sweep_that_ends_on_a_jobs_config_error_shows_its_message_not_a_traceback(tmp_path):
    result = dlrun(tmp_path, "-m", "objective.metric=accuracy,nope_score", "hydra.sweep.dir=sweep")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "job 1 failed: objective.metric 'nope_score' is not a metric" in result.stderr
    assert read_json(tmp_path / "sweep" / "0" / "run.json")["status"] == "completed"
    assert read_json(tmp_path / "sweep" / "1" / "run.json")["error"]["type"] == "ConfigError"


def test_a_sweep_whose_jobs_fail_in_the_adapter_shows_their_messages_not_a_traceback(tmp_path):
    result = dlrun(tmp_path, "-m", "adapter.configuration.estimator.max_iter=-1,-2", "hydra.sweep.dir=sweep")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "job 0 failed: InvalidParameterError" in result.stderr
    for job in ("0", "1"):  # the sweep went on after the first failure; each job's log holds its traceback
        assert f"traceback: {tmp_path / 'sweep' / job / 'dlrun.log'}" in result.stderr
        assert "Traceback" in (tmp_path / "sweep" / job / "dlrun.log").read_text()
        assert read_json(tmp_path / "sweep" / job / "run.json")["status"] == "failed"


def test_prepare_in_processes_scores_as_threads_do(tmp_path):
    on_threads = ok(dlrun(tmp_path))
    [threads_out] = output_dirs(on_threads.stdout)
    version = read_json(threads_out / "model.json")["name"]
    # prepare_in says how a run goes: an evaluate run of a trained version takes it from the command line
    again = ok(dlrun(tmp_path, "pipeline=evaluate", f"model.name={version}", "adapter=sklearn",
                     "+adapter.configuration.prepare_in=processes", "+adapter.configuration.prepare_workers=2"))
    assert "not applied" not in again.stdout + again.stderr
    [processes_out] = output_dirs(again.stdout)
    assert "prepare_item_func on 2 worker processes" in (processes_out / "dlrun.log").read_text()
    assert read_json(processes_out / "metrics.json")["accuracy"] == read_json(threads_out / "metrics.json")["accuracy"]
    # the version records the adapter that trained it: another one is named, with the option to choose
    other = dlrun(tmp_path, "pipeline=evaluate", f"model.name={version}", "adapter=torch_cnn")
    assert other.returncode == 2, other.stdout + other.stderr
    assert "was trained by the adapter 'adapters.sklearn_classifier.SklearnImageClassifier' (adapter=sklearn)" \
        in other.stderr and "fix: adapter=sklearn (or no adapter= at all" in other.stderr
    # a subclass of the adapter that trained it (a fixed predict) loads the same artifacts: it may
    derived = ok(dlrun(tmp_path, "pipeline=evaluate", f"model.name={version}", "adapter=mine",
                       _adapter_mine_in_a_config_folder(tmp_path)))
    assert "the adapter mine_adapter.Mine derives from adapters.sklearn_classifier.SklearnImageClassifier, which " \
           "trained the version: it loads it" in derived.stdout + derived.stderr
    [derived_out] = output_dirs(derived.stdout)
    assert read_json(derived_out / "metrics.json")["accuracy"] == read_json(threads_out / "metrics.json")["accuracy"]


def test_a_bad_run_setting_in_a_training_run_stops_it_before_anything_is_stored(tmp_path):
    result = dlrun(tmp_path, "+adapter.configuration.prepare_in=process", "+adapter.configuration.batch_size=5")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "configuration.prepare_in is 'process', not one of ['threads', 'processes']" in result.stderr
    assert "adapter.configuration.batch_size=5 is replaced by the run's batch_size (32)" in result.stdout + result.stderr
    assert not (tmp_path / "dl" / "local" / "platform.db").exists()  # refused before the platform opened


def test_predicting_a_folder_of_new_unlabeled_images(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    (tmp_path / "new" / "more").mkdir(parents=True)
    for i in range(12):
        Image.fromarray((digits.images[i] * 255 / 16).astype("uint8")).save(
            tmp_path / "new" / ("more" if i % 2 else "") / f"d{i}.png")
    version = read_json(output_dirs(ok(dlrun(tmp_path, "pipeline=train")).stdout)[0] / "model.json")["name"]
    new = ["pipeline=predict", f"model.name={version}", "dataset=unlabeled_images", "dataset.folder=new",
           "dataset.name=new"]
    refused = dlrun(tmp_path, *new)  # the default predict_subset is test, which a new folder does not have
    assert refused.returncode == 2 and "fix: to use every item of the dataset: pipeline.predict_subset=null" \
        in refused.stderr, refused.stderr
    done = ok(dlrun(tmp_path, *new, "pipeline.predict_subset=null"))
    assert "predicted 12 items" in done.stdout + done.stderr
    assert read_json(output_dirs(done.stdout)[0] / "run.json")["items"] == {"predicted": 12}
    exported = ok(dlrun(tmp_path, "export", "new", "out", "--model", version, "--no-ground-truth",
                        command=[sys.executable, "-m", "runner.store"]))
    assert "12 items" in exported.stdout
    predicted = {int(path.stem[1:]): [a["label"] for a in read_json(path)["annotations"]]
                 for path in (tmp_path / "out" / "json").rglob("*.json")}
    assert sorted(predicted) == list(range(12)) and all(len(labels) == 1 for labels in predicted.values())
    assert sum(labels == [str(digits.target[i])] for i, labels in predicted.items()) >= 10  # a real model's guesses

    # files added to the folder since: imported as the run starts; a file moved away is named, its item kept
    for i in (12, 13):
        Image.fromarray((digits.images[i] * 255 / 16).astype("uint8")).save(tmp_path / "new" / f"d{i}.png")
    (tmp_path / "new" / "d0.png").rename(tmp_path / "new" / "more" / "d0.png")
    again = ok(dlrun(tmp_path, *new, "pipeline.predict_subset=null")).stdout
    assert "the files of dataset 'new' changed since it was imported" in again
    assert "dataset 'new': 3 new item(s) from " + str(tmp_path / "new") in again
    assert "dataset 'new' holds 1 item(s) whose files are no longer in " + str(tmp_path / "new") in again
    assert "predicted 15 items" in again
    unchanged = ok(dlrun(tmp_path, *new, "pipeline.predict_subset=null")).stdout
    assert "changed since it was imported" not in unchanged and "predicted 15 items" in unchanged
    # named alone, as stored (what a run of a version trained on it takes): it follows its recorded folder too
    Image.fromarray((digits.images[14] * 255 / 16).astype("uint8")).save(tmp_path / "new" / "d14.png")
    named = ok(dlrun(tmp_path, *new[:2], "dataset.name=new", "dataset.source=null", "pipeline.predict_subset=null"))
    assert "dataset 'new': 1 new item(s) from " + str(tmp_path / "new") in named.stdout and "predicted 16 items" in \
        named.stdout
    (tmp_path / "new").rename(tmp_path / "moved")  # moved: the same run given the folder's new place follows it
    given = [*new[:3], "dataset.name=new", "pipeline.predict_subset=null"]
    moved = ok(dlrun(tmp_path, *given, "dataset.folder=moved")).stdout
    assert (f"dataset 'new': {tmp_path / 'new'}, which it was imported from, is gone; its source now names "
            f"{tmp_path / 'moved'}") in moved and "predicted 16 items" in moved and "new item(s)" not in moved
    shutil.rmtree(tmp_path / "moved")  # the folder gone: the dataset is read as stored, not imported from nothing
    assert "predicted 16 items" in ok(dlrun(tmp_path, *new[:2], "dataset.name=new", "dataset.source=null",
                                            "pipeline.predict_subset=null")).stdout
    gone = ok(dlrun(tmp_path, *given, "dataset.folder=moved")).stdout  # its source given: the same, with a warning
    assert f"dataset 'new': {tmp_path / 'moved'}, which it was imported from, is gone: the dataset is used as " \
           "stored (16 items)" in gone and "predicted 16 items" in gone


def test_scoring_a_version_on_a_new_labelled_folder_without_a_split(tmp_path):
    """A folder of class subfolders, not split into train/validation/test: the refusals lead to
    ``subsets=by_dir pipeline.evaluate_subset=null``, which scores every item; the log says what each
    evaluate read. A version's name misspelt gets the version meant, not an offer to train it."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in range(12):
        folder = tmp_path / "lab" / str(digits.target[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 255 / 16).astype("uint8")).save(folder / f"d{i}.png")
    trained = ok(dlrun(tmp_path))
    version = read_json(output_dirs(trained.stdout)[0] / "model.json")["name"]
    assert re.search(rf"step evaluate: model {version} \(\w+\), on dataset 'digits': subset 'test', \d+ items",
                     trained.stdout + trained.stderr)
    lab = ["pipeline=evaluate", f"model.name={version}", "dataset=image_folder", "dataset.folder=lab",
           "dataset.name=lab"]
    refused = dlrun(tmp_path, *lab)  # subsets=model: the version's own subsets, of another dataset
    assert refused.returncode == 2 and "to score it on every item of this dataset: subsets=by_dir " \
        "pipeline.evaluate_subset=null" in refused.stderr, refused.stderr
    refused = dlrun(tmp_path, *lab, "subsets=by_dir")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "error: subset 'test' matches no item of dataset 'lab'" in refused.stderr
    assert "fix: to use every item of the dataset: pipeline.evaluate_subset=null; or" in refused.stderr
    assert "subsets=model" not in refused.stderr  # those are of the dataset it was trained on
    done = ok(dlrun(tmp_path, *lab, "subsets=by_dir", "pipeline.evaluate_subset=null"))
    assert "on dataset 'lab': every item" in done.stdout + done.stderr
    assert read_json(output_dirs(done.stdout)[0] / "metrics.json")["n_items"] == 12
    # its own dataset's every item holds what it was trained on: not offered there
    own = dlrun(tmp_path, "pipeline=evaluate", f"model.name={version}", "subsets=by_dir",
                "~subsets.test.filter",
                "+subsets.test.filter={dir: /nothere}")
    assert own.returncode == 2 and "matches no item of dataset 'digits'" in own.stderr, own.stdout + own.stderr
    assert "evaluate_subset=null" not in own.stderr
    misspelt = dlrun(tmp_path, "pipeline=evaluate", f"model.name={version[:-1]}")
    assert misspelt.returncode == 2, misspelt.stdout + misspelt.stderr
    assert f"(did you mean model.name={version}?)\n  where: model.name\n  fix: model.name={version};" in misspelt.stderr
    assert "train one first" not in misspelt.stderr


def test_a_predict_that_raises_names_its_line_and_logs_the_traceback(tmp_path):
    """Every batch fails in the adapter's predict (through scikit-learn): one message naming the
    adapter's own line (not the library's), the traceback in the run's log, exit 1 as for any error
    raised inside the adapter."""
    (tmp_path / "broken_adapter.py").write_text(
        "import numpy as np\n"
        "from adapters.sklearn_classifier import SklearnImageClassifier\n\n\n"
        "class Broken(SklearnImageClassifier):\n"
        "    def predict(self, batch, **kwargs):\n"
        "        return self.model.predict(np.zeros((len(batch), 3)))  # wrong feature count\n")
    extra = tmp_path / "extra" / "adapter"
    extra.mkdir(parents=True)
    (extra / "broken.yaml").write_text((CONF_DIR / "adapter" / "sklearn.yaml").read_text().replace(
        "adapters.sklearn_classifier.SklearnImageClassifier", "broken_adapter.Broken").replace("name: sklearn",
                                                                                              "name: broken"))
    result = dlrun(tmp_path, "adapter=broken", f"hydra.searchpath=[file://{tmp_path / 'extra'}]")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^error: predict_dataset failed for (\d+) of \1 items; nothing was stored", result.stderr,
                     re.MULTILINE), \
        result.stderr
    assert f"the first failure was raised at {tmp_path / 'broken_adapter.py'}:7 in predict" in result.stderr
    [log] = tmp_path.glob("outputs/*/*/dlrun.log")
    assert f"traceback: {log}" in result.stderr and "Traceback" not in result.stderr
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "ValueError: X has 3 features" in text
    # the version it trained before its evaluate step failed is named, with the command that scores it
    trained = read_json(log.parent / "run.json")["model"]
    assert trained["status"] == "trained" and read_json(log.parent / "run.json")["status"] == "failed"
    # (the whole command: this run's adapter option and config folder, as runner.store show gives it)
    assert result.stderr.rstrip().endswith(
        f"kept: model version {trained['name']} had finished training (status trained); once the cause is fixed, "
        f"cd {tmp_path} && python -m runner pipeline=evaluate model.name={trained['name']} adapter=broken "
        f"dataset=digits metrics=classification 'hydra.searchpath=[file://{tmp_path / 'extra'}]' scores it without "
        "training again"), result.stderr


@pytest.mark.parametrize(("override", "mentions"), [
    ("adapter._target_=nope.Nope", ["nope", "adapter._target_"]),
    ("dataset=image_folder", ["dataset.name"]),
    # an Optuna sweeper reads the direction before any job runs
    ("hparams_search=digits_optuna objective.direction=max", ["'max'", "objective.direction=maximize"]),
    ("hparams_search=digits_optuna hydra.sweeper.n_trials=0", ["n_trials is 0", "at least one trial"]),
    # the sweeper would divide by it after making the study
    ("hparams_search=digits_optuna hydra.sweeper.n_jobs=0", ["n_jobs is 0", "hydra.sweeper.n_jobs=<1 or more>"]),
    # a misspelt key of the adapter group would leave its settings unset without a word
    ("+adapter.configuraton.C=2", ["adapter.configuraton is not a key", "did you mean adapter.configuration?"]),
    # Hydra composes a sweep with the default adapter first, which lacks the key: it would suggest +key
    ("-m adapter=torch_cnn,sklearn_svc adapter.configuration.epochs=1",
     ["adapter.configuration.epochs is not a key of adapter=sklearn", "fix: ++adapter.configuration.epochs=1"]),
    # a grid sweep's value it cannot list, or lists as nothing (exit 0, no job) or as one value by mistake
    ("-m adapter.configuration.estimator.C=interval(0.1,1.0)", ["interval(...) is a range an Optuna search draws from",
                                                                "hparams_search=<preset>"]),
    ("-m seed=range(3,0)", ["gives no value, so the sweep would run no job", "range(3,0,-1)"]),
    ("-m seed=range(0,3,0)", ["gives no values: range() arg 3 must not be zero"]),
    ("-m adapter.configuration.estimator.C=range(0.1,1.0)", ["gives one value (0.1)", "range(0.1,1.0,0.225)"]),
    # Hydra's own messages: its option list with the search path, and "no _target_ field"
    ("-m seed=0,1 hydra/launcher=jobilb", ["hydra/launcher has no option 'jobilb' (did you mean "
                                           "hydra/launcher=joblib?)", "'submitit_local'"]),
    ("-m seed=0,1 hydra.launcher=joblib", ["sets the launcher's settings node", "fix: hydra/launcher=joblib"]),
    # Hydra: "Multiple values for experiment. To override a value use 'override experiment: ...'"
    ("+experiment=digits_logreg", ["+experiment= adds a group the config does not have, but experiment is one of "
                                   "its groups already", "fix: experiment=digits_logreg (no +)"]),
    ("-m seed=0,1 hydra/launcher=submitit", ["(did you mean hydra/launcher=submitit_local or "
                                             "hydra/launcher=submitit_slurm?)"]),
    # joblib's traceback once the sweep folder is made
    ("-m seed=0,1 hydra/launcher=joblib hydra.launcher.n_jobs=0", ["hydra.launcher.n_jobs is 0", "-1 for one job per"]),
    # a glob that matches nothing: no job, exit 0
    ("-m experiment=glob(digit_*)", ["experiment=glob(digit_*) matches no option of experiment",
                                     "'digits_logreg'"]),
    # a search's setting without a search: Hydra would offer +hydra.sweeper.n_trials
    ("hydra.sweeper.n_trials=3", ["hydra.sweeper.n_trials is a setting of an Optuna search",
                                  "hparams_search=<preset> (digits_optuna, torch_cnn_optuna)"]),
], ids=["adapter-not-importable", "missing-required-value", "search-direction", "no-trials", "no-trials-at-a-time",
        "adapter-key", "swept-group-key", "grid-interval", "grid-range-empty", "grid-range-step-zero",
        "grid-float-range-one-value", "launcher-misspelt", "launcher-with-a-dot", "group-added-with-plus", "launcher-prefix", "launcher-no-jobs-at-a-time",
        "glob-matching-nothing", "search-setting-without-a-search"])
def test_a_bad_config_exits_2_with_a_helpful_error(tmp_path, override, mentions):
    result = dlrun(tmp_path, *override.split())
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error:"), result.stderr
    assert "fix:" in result.stderr
    for mention in mentions:
        assert mention in result.stderr
    assert "Traceback" not in result.stderr
    # found before anything is written to the platform, or a study made
    assert not (tmp_path / "dl" / "local").exists() and not (tmp_path / "dl" / "studies").exists()


def test_a_sweep_into_a_folder_that_holds_an_earlier_sweeps_jobs_is_refused(tmp_path):
    """Its jobs are numbered from 0 again: they would write over the earlier ones, completed ones too."""
    for job in ("0", "1"):
        (tmp_path / "sweep" / job / ".hydra").mkdir(parents=True)
    result = dlrun(tmp_path, "-m", "seed=0,1", "hydra.sweep.dir=sweep")
    assert result.returncode == 2 and result.stderr.startswith(
        "error: sweep holds the job folders of an earlier sweep (0, 1): this sweep numbers its jobs from 0 and "
        "would write over them"), result.stderr
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["0", "1"]  # nothing written there


@pytest.mark.parametrize(("override", "meant"), [
    ("adapter.configuration.estimator.c=3", "adapter.configuration.estimator.C"),  # case
    ("batch_sise=3", "batch_size"),
    ("adapter.configuraton.C=3", "adapter.configuration.estimator.C"),  # the same name elsewhere
    ("adapter.configuraton.max_iterations=3", "adapter.configuration (the rest of the key aside)"),
    ("adapter.configuration.batch_size=3", "batch_size"),  # a fuzzy neighbour (image_size) is not it
    ("adapter.configuration.max_iter=3", "adapter.configuration.estimator.max_iter"),
    # keys the config has beside it are not the one refused, even where a value is missing (???) without them
    ("dataset.name=photos batch_sise=3", "batch_size"),
    ("dataset=image_folder dataset.folder=photos dataset.name=ph batch_sise=3", "batch_size"),
    ("model.configuration.estimator.c=3", "adapter.configuration.estimator.C"),  # merged over the adapter's
    ("-m batch_sise=16,32", "batch_size"),  # a sweep's key
    ("adapter=torch_cnn adapter.configuration.epoch=1", "adapter.configuration.epochs"),  # the chosen option's keys
])
def test_a_misspelt_key_hydra_refuses_gets_the_key_likely_meant(tmp_path, override, meant):
    result = dlrun(tmp_path, *override.split(), "pipeline=train")
    assert result.returncode == 2, result.stdout + result.stderr
    key = override.split()[-1].partition("=")[0]
    assert "is not in struct" in result.stderr  # Hydra's own message first
    assert result.stderr.rstrip().endswith(f"hint: did you mean {meant}? (+{key} would add it as a new key)"), \
        result.stderr
    assert not (tmp_path / "dl" / "local").exists()


def test_a_key_added_with_plus_that_is_a_letter_off_its_neighbour_is_named_in_a_warning(tmp_path):
    """Hydra's advice for a key the config lacks is ``+key=value``: followed for a misspelt key, the run
    goes on (the key may be the adapter's own) but says which key was likely meant."""
    result = ok(dlrun(tmp_path, "+adapter.configuration.estimater.C=2", "pipeline=train", "hydra.run.dir=run"))
    assert ("adapter.configuration.estimater, added with '+', is close to adapter.configuration.estimator"
            in result.stdout), result.stdout
    configuration = read_json(tmp_path / "run" / "model.json")["configuration"]
    assert configuration["estimator"]["C"] == 1.0 and configuration["estimater"] == {"C": 2}
    assert "added with '+'" not in ok(dlrun(tmp_path, "+adapter.configuration.prepare_in=threads",
                                            "pipeline=train", "hydra.run.dir=run2")).stdout
    # outside the adapter's configuration too; and a subset filter added over the option's is merged
    result = ok(dlrun(tmp_path, "+batch_sise=3", "+subsets.test.filter={dir: /test}", "pipeline=train"))
    assert ("batch_sise, added with '+', is close to batch_size: a misspelt key is a new setting the runner does "
            "not read (did you mean batch_size?)") in result.stdout, result.stdout
    assert ("subsets.test.filter, added with '+', is merged into the filter of the subsets option (both apply); "
            "to replace it: '~subsets.test.filter' '+subsets.test.filter=...'") in result.stdout
    replaced = ok(dlrun(tmp_path, "~subsets.test.filter", "+subsets.test.filter={dir: /test}", "pipeline=train"))
    assert "added with '+'" not in replaced.stdout


def _adapter_option(tmp_path: Path, option: str, source: str) -> str:
    """An adapter option ``option`` of a config folder in ``tmp_path``: the sklearn option's file, for the
    class ``Adapter`` of ``<option>_adapter.py``, written from ``source``; returns the override that
    searches the folder."""
    (tmp_path / f"{option}_adapter.py").write_text(source)
    folder = tmp_path / "extra" / "adapter"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{option}.yaml").write_text((CONF_DIR / "adapter" / "sklearn.yaml").read_text().replace(
        "adapters.sklearn_classifier.SklearnImageClassifier", f"{option}_adapter.Adapter").replace(
        "name: sklearn", f"name: {option}"))
    return f"hydra.searchpath=[file://{tmp_path / 'extra'}]"


_SKLEARN = "from adapters.sklearn_classifier import SklearnImageClassifier\n\n\nclass Adapter(SklearnImageClassifier):\n"


@pytest.mark.parametrize(("code", "says"), [
    ("    def __init__(self, threshold, model_entity=None):\n"
     "        super().__init__(model_entity=model_entity)\n",
     ["error: Adapter.__init__(self, threshold, model_entity=None) needs 'threshold', which a run does not give: it "
      "builds the adapter as Adapter(model_entity=<the model version>), as Dataloop does", ":5 in Adapter.__init__",
      "fix: give threshold a default, or read it from the model's configuration in load "
      "(self.configuration.get('threshold', <default>)"]),
    ("    def train(self, data_path, output_path):\n"
     "        super().train(data_path, output_path)\n",
     ["error: Adapter.train(self, data_path, output_path) cannot take the call train_model makes, train(data_path=..., "
      "output_path=..., on_epoch_end_callback=...): got an unexpected keyword argument 'on_epoch_end_callback'",
      ":5 in Adapter.train", "fix: define it with dtlpy's signature, train(self, data_path, output_path, **kwargs)"]),
], ids=["init-with-a-required-argument", "train-without-kwargs"])
def test_an_adapter_the_runner_cannot_build_or_train_is_refused_before_a_version_is_made(tmp_path, code, says):
    """The runner builds the class as Adapter() or Adapter(model_entity=...), and calls train with
    on_epoch_end_callback, as Dataloop does: a class that cannot take either is a configuration that
    cannot run, found before anything is stored (no version left behind in status created or failed)."""
    result = dlrun(tmp_path, "adapter=strict", _adapter_option(tmp_path, "strict", _SKLEARN + code))
    assert result.returncode == 2, result.stdout + result.stderr
    for text in says:
        assert text in result.stderr, result.stderr
    assert f"where: {tmp_path / 'strict_adapter.py'}:5" in result.stderr
    assert "Traceback" not in result.stderr and "kept:" not in result.stderr
    assert not (tmp_path / "dl" / "local").exists()


@pytest.mark.parametrize(("code", "says"), [
    ("    def load(self, local_path, **kwargs):\n"
     "        raise RuntimeError('cannot open weights: corrupted header')\n",
     "with no artifacts saved (load_from_model failed, so train never ran)"),
    ("    def save(self, local_path, **kwargs):\n"
     "        pass\n",
     "with no artifacts saved (train had ended, then its save stored none)"),
], ids=["load-fails", "save-writes-nothing"])
def test_a_failed_training_is_said_to_have_saved_only_what_it_saved(tmp_path, code, says):
    """A training that stops before train runs has no checkpoint, nor a save after the failure; one whose
    save fails after train ended is not said to have failed in train."""
    result = dlrun(tmp_path, "adapter=failing", "pipeline=train", "hydra.run.dir=run",
                   _adapter_option(tmp_path, "failing", _SKLEARN + code))
    assert result.returncode == 1, result.stdout + result.stderr
    name = read_json(tmp_path / "run" / "run.json")["model"]["name"]
    assert result.stderr.rstrip().endswith(
        f"kept: model version {name}, status failed, {says}; python -m runner.store delete-model {name} removes it"), \
        result.stderr


@pytest.mark.parametrize(("definition", "warned", "refused"), [
    ("dl.Classification(label=f'digit {a.label}')", "have labels model '{name}' does not have: 'digit ",
     "error: predictions with labels the model does not have: 'digit "),
    ("dl.Box(left=0, top=0, right=4, bottom=4, label=a.label)",
     "have annotation types other than the output type of model '{name}' ('class'): 'box' (269)",
     "error: model '{name}' stored predictions of type 'box', not of its output type 'class', so none can be scored"),
], ids=["labels", "types"])
def test_a_predict_outside_the_models_labels_or_type_warns_and_its_evaluation_exits_1(tmp_path, definition, warned,
                                                                                      refused):
    """As on Dataloop, a predict run stores such predictions, with a warning that says what evaluate will
    make of them; evaluate refuses them as a mistake of the adapter's predict: exit 1 either way."""
    search = _adapter_option(tmp_path, "offmodel", "import dtlpy as dl\n" + _SKLEARN + (
        "    def predict(self, batch, **kwargs):\n"
        "        out = []\n"
        "        for collection in super().predict(batch, **kwargs):\n"
        "            new = dl.AnnotationCollection()\n"
        "            for a in collection:\n"
        f"                new.add(annotation_definition={definition},\n"
        "                        model_info={'name': self.model_entity.name, 'confidence': 1.0})\n"
        "            out.append(new)\n"
        "        return out\n"))
    predicted = ok(dlrun(tmp_path, "adapter=offmodel", "pipeline.steps=[train,predict]", search))
    name = read_json(output_dirs(predicted.stdout)[0] / "model.json")["name"]
    assert f"269 predictions on 269 items {warned.format(name=name)}" in predicted.stdout, predicted.stdout
    evaluated = dlrun(tmp_path, "pipeline=evaluate", f"model.name={name}", search)
    assert evaluated.returncode == 1, evaluated.stdout + evaluated.stderr
    assert refused.format(name=name) in evaluated.stderr, evaluated.stderr


def test_an_adapters_error_is_one_message_with_the_traceback_in_the_runs_log(tmp_path):
    result = dlrun(tmp_path, "adapter=torch_cnn", "adapter.configuration.optimizer=adamw", "hydra.run.dir=run")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ValueError: model configuration 'optimizer' must be one of"), result.stderr
    assert "where: " in result.stderr and "torch_classifier.py" in result.stderr
    log = tmp_path / "run" / "dlrun.log"
    assert f"traceback: {log}" in result.stderr
    assert "Traceback (most recent call last)" in log.read_text()
    record = read_json(tmp_path / "run" / "run.json")
    assert record["status"] == "failed" and record["model"]["artifacts"] == 0
    # it failed before saving anything: the note says so, not that it resumes from what it saved
    assert f"kept: model version {record['model']['name']}, status failed, with no artifacts saved" in result.stderr


def test_sigterm_ends_a_run_as_an_interrupt_does(tmp_path):
    log = tmp_path / "run" / "dlrun.log"
    returncode, stderr = terminated_when(tmp_path, lambda line: "epoch 2/500 done" in line,  # a checkpoint exists
                                         "adapter=torch_cnn", "adapter.configuration.epochs=500", "hydra.run.dir=run")
    assert returncode == 128 + 15, stderr
    assert "Traceback" not in stderr
    record = read_json(tmp_path / "run" / "run.json")
    name = record["model"]["name"]
    assert stderr.rstrip().endswith(
        f"interrupted (SIGTERM): the run stopped; run.json records it as failed\n  kept: model version {name}, status "
        f"failed, with what its training had saved; cd {tmp_path} && python -m runner adapter=torch_cnn "
        f"adapter.configuration.epochs=500 model.name={name} trains it again from there; python -m "
        f"runner.store delete-model {name} removes it"), stderr
    assert record["status"] == "failed" and record["error"]["type"] == "Terminated"
    assert record["model"]["status"] == "failed"
    assert record["error"]["message"] == "interrupted by SIGTERM"
    assert "epoch 2/500" in log.read_text()  # ("done" may be cut off by the signal, between handlers)
    from runner.platform.local import LocalPlatform

    model = LocalPlatform(tmp_path / "dl" / "local").get_model(record["model"]["id"])
    assert model.status == "failed"
    assert "last.pt" in [a.local_path for a in model.artifacts.list()]  # the checkpoint to resume from


def test_an_interrupted_predict_run_says_that_the_same_command_runs_it_again(tmp_path):
    version = read_json(output_dirs(ok(dlrun(tmp_path, "pipeline=train")).stdout)[0] / "model.json")["name"]
    returncode, stderr = terminated_when(tmp_path, lambda line: "step predict:" in line, "pipeline=predict",
                                         f"model.name={version}", "pipeline.predict_subset=null", "batch_size=1",
                                         signum=signal.SIGINT)
    assert returncode == 128 + signal.SIGINT, stderr
    assert stderr.rstrip().endswith(
        "interrupted (SIGINT): the run stopped; run.json records it as failed; the same command runs it again (a "
        "predict or evaluate run replaces the model's predictions on the items it reaches, so the items this one did "
        "not reach keep their earlier ones until then)"), stderr


def test_ctrl_c_as_a_run_prints_its_outputs_leaves_it_completed(tmp_path):
    returncode, stderr = terminated_when(tmp_path, lambda line: line.startswith("outputs:"), "hydra.run.dir=run",
                                         signum=signal.SIGINT)
    assert returncode == 128 + signal.SIGINT, stderr
    assert "interrupted (SIGINT) after the run had completed: run.json records it as completed" in stderr
    record = read_json(tmp_path / "run" / "run.json")
    assert record["status"] == "completed" and record["model"]["status"] == "trained"


def test_a_stop_signal_long_after_the_first_ends_a_clean_up_that_hangs(tmp_path):
    """A worker whose clean-up blocks for good (writing to a pipe no one reads once its sweep's process
    was killed): a signal at once is ignored, so as not to break off a clean-up; a later one ends it."""
    script = ("import time\n"
              "from runner import cli\n"
              "cli._FORCE_AFTER = 2.0\n"
              "cli._handle_stop_signals()\n"
              "try:\n"
              "    print('ready', flush=True)\n"
              "    time.sleep(60)\n"
              "except cli.Terminated:\n"
              "    print('cleaning up', flush=True)\n"
              "    while True:\n"
              "        time.sleep(0.05)\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        assert process.stdout.readline() == "cleaning up\n"
        process.send_signal(signal.SIGTERM)  # during the clean-up: it goes on
        time.sleep(0.2)
        assert process.poll() is None
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == -signal.SIGTERM
    finally:
        process.kill()


def test_the_kept_version_note_says_what_to_do_for_how_the_run_stopped():
    """An error has a cause to fix before the version is scored; an interrupt has none. A failed
    training that saved nothing is not said to resume from what it saved."""
    from runner.cli import _kept_version_note

    error, interrupt = RuntimeError("boom"), KeyboardInterrupt()
    for err in (error, interrupt):
        err.kept_version = ("v1", "trained", 2, None)  # (no run folder: the short form of the commands)
    assert "; once the cause is fixed, pipeline=evaluate model.name=v1" in _kept_version_note(error)
    assert _kept_version_note(interrupt).endswith("(status trained); pipeline=evaluate model.name=v1 scores it without "
                                                  "training again")
    error.kept_version = ("v2", "failed", 0, None)
    assert _kept_version_note(error) == ("\n  kept: model version v2, status failed, with no artifacts saved (its "
                                         "save after the failure stored none); python -m runner.store delete-model v2 "
                                         "removes it")
    # where train_model says the training stopped (runner.adapter): nothing is said to be saved that was not
    for stopped, artifacts, says in (
            (("load_from_model", False), 0, "with no artifacts saved (load_from_model failed, so train never ran)"),
            (("prepare_data", False), 2, "with no artifacts saved (prepare_data failed, so train never ran): it holds "
                                         "those of the version it was made from"),
            (("save_to_model", False), 0, "with no artifacts saved (train had ended, then its save stored none)"),
            (("train", True), 1, "with what its training had saved; model.name=v2 trains it again from there")):
        error.training_stopped, error.kept_version = stopped, ("v2", "failed", artifacts, None)
        assert _kept_version_note(error) == (f"\n  kept: model version v2, status failed, {says}; python -m "
                                             "runner.store delete-model v2 removes it")


def test_a_sigterm_during_a_runs_last_writes_waits_for_them():
    """Once a run's steps are done, SIGTERM is held back until run.json is written, then raised: a
    run never leaves metrics.json and a trained version beside a run.json that says it failed."""
    import signal

    from runner import cli, interrupts

    previous = signal.signal(signal.SIGTERM, cli._terminate)
    try:
        interrupts.hold()
        os.kill(os.getpid(), signal.SIGTERM)  # handled now, on this thread: noted, not raised
        with pytest.raises(interrupts.Terminated) as raised:
            interrupts.release()
        assert raised.value.signal == signal.SIGTERM and raised.value.after_completion
        interrupts.hold()
        os.kill(os.getpid(), signal.SIGTERM)
        interrupts.release(raise_pending=False)  # the run is failing anyway: its own error goes on
        interrupts.release()  # nothing left pending
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not cli._terminating


def test_a_glob_sweep_takes_in_the_options_of_a_config_folder_on_the_search_path(tmp_path):
    """Hydra's sweeper lists a glob's options without the command line's ``hydra.searchpath``; the
    runner lists them first, so the user's own experiment runs with the shipped ones."""
    extra = tmp_path / "extra" / "experiment"
    extra.mkdir(parents=True)
    (extra / "digits_mine.yaml").write_text((CONF_DIR / "experiment" / "digits_logreg.yaml").read_text())
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'extra'}]"
    result = ok(dlrun(tmp_path, "-m", "experiment=glob(digits_*,exclude=digits_svc)", searchpath, "debug=default",
                      "pipeline=train", "hydra.sweep.dir=sweep"))
    launched = re.findall(r"#\d+ : (experiment=\S+)", result.stdout + result.stderr)
    assert launched == ["experiment=digits_logreg", "experiment=digits_mine"], result.stdout + result.stderr
    assert "2 jobs (2 completed)" in result.stdout


@pytest.mark.parametrize("where", ["empty", "a-file", "under-a-file"])
@pytest.mark.parametrize("module", ["runner", "runner.store"])
def test_a_dataloop_path_that_cannot_hold_the_store_is_one_message_before_dtlpy_is_imported(tmp_path, where, module):
    """dtlpy writes its own files there as it is imported: without this check, a traceback from
    inside dtlpy's import."""
    (tmp_path / "afile").write_text("not a folder")
    path = {"empty": "", "a-file": str(tmp_path / "afile"), "under-a-file": str(tmp_path / "afile" / "dl")}[where]
    env = {**os.environ, "DATALOOP_PATH": path}
    args = ["models"] if module == "runner.store" else []
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 2, result.stdout + result.stderr
    said = {"empty": "DATALOOP_PATH is set but empty", "a-file": f"DATALOOP_PATH {path} is a file, not a folder",
            "under-a-file": f"DATALOOP_PATH {path} cannot be made: {tmp_path / 'afile'} is a file"}[where]
    assert result.stderr.startswith(f"error: {said}\n  where: DATALOOP_PATH\n  fix: point DATALOOP_PATH at a folder"), \
        result.stderr
    assert "Traceback" not in result.stderr


def test_an_inference_setting_given_to_an_evaluate_run_applies_to_that_run_and_is_recorded_with_its_score(tmp_path):
    """A detector's min_score tried (and swept) on a trained version without training again: the run
    scores with it, the evaluation records it, the version keeps its own."""
    shapes = ["adapter=shapes_detector", "dataset=shapes", "dataset.source.n_images=60"]
    ok(dlrun(tmp_path, *shapes, "hydra.run.dir=train"))
    trained = read_json(tmp_path / "train" / "metrics.json")
    version = read_json(tmp_path / "train" / "model.json")
    assert version["configuration"]["min_score"] == 0.05
    result = ok(dlrun(tmp_path, "-m", *shapes, "pipeline=evaluate", f"model.name={version['name']}",
                      "adapter.configuration.min_score=0.05,0.95", "hydra.sweep.dir=sweep"))
    low, high = (read_json(tmp_path / "sweep" / job / "metrics.json") for job in ("0", "1"))
    assert high["configuration_changes"] == {"min_score": 0.95} and "configuration_changes" not in low
    assert low["n_predictions"] == trained["n_predictions"] > high["n_predictions"]
    log = (tmp_path / "sweep" / "1" / "dlrun.log").read_text()
    assert f"model {version['name']}, for this run only (the version keeps its own configuration; a setting its training " \
        "fixed is not changed by it): " \
           "min_score: 0.05 -> 0.95" in log
    assert "min_score=0.95" in result.stdout  # the sweep's table has the setting
    store = [sys.executable, "-m", "runner.store"]
    shown = json.loads(ok(dlrun(tmp_path, "show", version["name"], "--json", command=store)).stdout)
    assert shown["configuration"] == version["configuration"]
    assert [e["with"] for e in shown["evaluations"]] == [{"min_score": 0.95}, None, None]
    listing = ok(dlrun(tmp_path, "models", command=store)).stdout
    assert "shapes (test), 9 items, with min_score=0.95" in listing


def test_an_adapter_option_without_a_key_the_config_reads_names_its_file_and_the_key(tmp_path):
    """model.output_type is ${adapter.output_type}: an adapter YAML of one's own without it."""
    extra = tmp_path / "extra" / "adapter"
    extra.mkdir(parents=True)
    text = (CONF_DIR / "adapter" / "sklearn.yaml").read_text()
    assert "output_type: class\n" in text
    (extra / "mine.yaml").write_text(text.replace("output_type: class\n", ""))
    result = dlrun(tmp_path, "adapter=mine", f"hydra.searchpath=[file://{tmp_path / 'extra'}]")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: the adapter option 'mine' sets no 'output_type', which model.output_type takes " \
           "(${adapter.output_type})" in result.stderr
    assert f"where: {extra / 'mine.yaml'}" in result.stderr
    assert f"fix: add 'output_type: <value>' to {extra / 'mine.yaml'}, or give it on the command line: " \
           "+adapter.output_type=<value>" in result.stderr
    assert not (tmp_path / "dl" / "local").exists() or not list((tmp_path / "dl" / "local").glob("*.db"))


def test_resume_true_runs_the_jobs_of_a_grid_sweep_that_did_not_complete_and_keeps_the_others(tmp_path):
    grid = ["-m", "adapter.configuration.estimator.C=0.1,1", "pipeline=train", "hydra.sweep.dir=sw"]
    ok(dlrun(tmp_path, *grid))
    first = [read_json(tmp_path / "sw" / job / "run.json") for job in ("0", "1")]
    assert first[0]["overrides"] == ["adapter.configuration.estimator.C=0.1", "pipeline=train"]
    (tmp_path / "sw" / "1" / "run.json").write_text(json.dumps({**first[1], "status": "failed"}))  # as a Ctrl-C leaves
    refused = dlrun(tmp_path, *grid)
    assert refused.returncode == 2 and "give its own command with resume=true" in refused.stderr

    again = ok(dlrun(tmp_path, *grid, "resume=true"))
    assert "resume: " + str(tmp_path / "sw" / "0") + " completed before (model version " + first[0]["model"]["name"] \
        in again.stdout
    kept, rerun = (read_json(tmp_path / "sw" / job / "run.json") for job in ("0", "1"))
    assert kept == first[0]  # not run again: the same version, the same record
    assert rerun["status"] == "completed" and rerun["model"]["name"] != first[1]["model"]["name"]
    report = (tmp_path / "sw" / "sweep_report.md").read_text()
    assert "2 jobs (2 completed)" in report and first[0]["model"]["name"] in report and "left out" not in report
    assert "kept: job 0 completed in an earlier sweep of this command into this folder (resume=true)" in report
    assert "completed (kept)" in report and report.count("(kept)") == 1  # job 1 ran again
    assert "fixed: pipeline=train" in report and "resume" not in report.split("kept:")[0]  # not a job's parameter

    other = dlrun(tmp_path, "-m", "adapter.configuration.estimator.C=0.5,1", "pipeline=train", "hydra.sweep.dir=sw",
                  "resume=true")  # another grid: job 0 of this one is not the folder's
    assert other.returncode != 0 and "resume=true: " + str(tmp_path / "sw" / "0") + " holds the run of other " \
        "overrides" in other.stdout + other.stderr
    assert read_json(tmp_path / "sw" / "0" / "run.json") == first[0]  # nothing written over
    search = dlrun(tmp_path, "hparams_search=digits_optuna", "hydra.sweep.dir=sw", "resume=true")
    assert search.returncode == 2 and "resume=true continues a grid sweep" in search.stderr

    ok(dlrun(tmp_path, "delete-model", first[0]["model"]["name"], "--yes", command=[sys.executable, "-m", "runner.store"]))
    after_delete = ok(dlrun(tmp_path, *grid, "resume=true"))  # job 0's version is gone: it runs again
    assert f"its model version {first[0]['model']['name']} is no longer in the store: run again" in after_delete.stdout
    again_0, kept_1 = (read_json(tmp_path / "sw" / job / "run.json") for job in ("0", "1"))
    assert again_0["status"] == "completed" and again_0["model"]["name"] != first[0]["model"]["name"]
    assert kept_1 == rerun


def test_a_dataset_imported_from_python_keeps_its_source_for_the_runs_after(tmp_path):
    """Imported from Python, a dataset records its source as a run does: a run naming it with another
    folder is refused rather than merged into it; with its own folder it runs."""
    from sklearn.datasets import load_digits

    from runner.data import import_image_folder
    from runner.platform.local import LocalPlatform

    digits = load_digits()
    for folder in ("a", "b"):
        for split in ("train", "validation", "test"):
            for i in range(8):
                path = tmp_path / folder / split / str(digits.target[i])
                path.mkdir(parents=True, exist_ok=True)
                Image.fromarray((digits.images[i] * 255 / 16).astype("uint8")).save(path / f"{folder}{i}.png")
    import_image_folder(LocalPlatform(tmp_path / "dl" / "local"), tmp_path / "a", "pics")

    run = ["pipeline=train", "dataset=image_folder", "dataset.name=pics"]
    refused = dlrun(tmp_path, *run, "dataset.folder=b")
    assert refused.returncode == 2 and (f"dataset 'pics' is already in the store, imported with folder="
                                        f"'{tmp_path / 'a'}'") in refused.stderr, refused.stderr
    assert LocalPlatform(tmp_path / "dl" / "local").count_items(
        LocalPlatform(tmp_path / "dl" / "local").get_dataset(name="pics"), None) == 24  # nothing of b merged in
    same = ok(dlrun(tmp_path, *run, "dataset.folder=a", "+dataset.source.split_dirs=true"))  # a default: one import
    assert "already in the store" not in same.stderr and "importing it again" not in same.stdout
