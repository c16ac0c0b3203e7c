"""Optuna searches as users run them: a stored study that a second invocation continues, and a
failure budget that lets one bad trial of a batch pass but stops a sweep whose batch fails whole."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import optuna
import pytest

from runner.studies import study_seed, trials_so_far
from tests.test_cli import dlrun, job_folders, ok, read_json, run_folders


def _study(tmp_path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'dl' / 'studies' / 'optuna.db'}")


def test_a_second_invocation_continues_the_stored_study(tmp_path):
    ok(dlrun(tmp_path, "hparams_search=digits_optuna", "hydra.sweeper.n_trials=2"))
    first = _study(tmp_path, "digits_sklearn_validation").trials
    assert [t.state for t in first] == [optuna.trial.TrialState.COMPLETE] * 2

    second = ok(dlrun(tmp_path, "hparams_search=digits_optuna", "hydra.sweeper.n_trials=2"))
    trials = _study(tmp_path, "digits_sklearn_validation").trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    # the best trial's version is named, found from its sweep job's folder, whichever invocation ran it
    best_version = re.search(r"the study's best: accuracy [\d.]+, trial \d, from [a-z ]+, model version (\S+)",
                             second.stdout + second.stderr)
    assert best_version, second.stdout + second.stderr
    listed = json.loads(ok(dlrun(tmp_path, "studies", "--json", command=[sys.executable, "-m", "runner.store"])).stdout)
    assert listed[0]["best"]["version"] == best_version.group(1)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # the resumed sampler goes on instead of replaying the first invocation's proposals
    assert [t.params for t in trials[2:]] != [t.params for t in trials[:2]]
    sweeps = run_folders(tmp_path, "multirun")
    assert len(sweeps) == 2
    accuracies = [read_json(job / "metrics.json")["accuracy"] for sweep in sweeps for job in job_folders(sweep)]
    assert sorted(t.value for t in trials) == pytest.approx(sorted(accuracies))


def _search(tmp_path, name: str, intercept_scaling: str) -> None:
    """The shipped digits_optuna preset in the user's own config folder, with a setting that
    scikit-learn rejects when it is 0: ``${hydra:job.num}`` fails job 0 only, ``0`` every job."""
    folder = tmp_path / "conf" / "hparams_search"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n"
        "  - digits_optuna\n"
        "hydra:\n"
        "  sweeper:\n"
        f"    study_name: {name}\n"
        "adapter:\n"
        "  configuration:\n"
        "    estimator:\n"
        f"      intercept_scaling: {intercept_scaling}\n")


@pytest.mark.parametrize("preset", ["digits_optuna", "torch_cnn_optuna"])
def test_the_presets_store_their_study_and_allow_one_failure_per_batch(preset):
    from hydra import compose, initialize_config_dir

    from runner.resolvers import register_resolvers
    from tests.test_cli import CONF_DIR

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hparams_search={preset}"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper.n_jobs == 2 and sweeper.max_failure_rate == 0.5
    assert sweeper.storage.startswith("sqlite:///") and sweeper.storage.endswith("/studies/optuna.db")
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.sampler.seed == cfg.seed  # a new study: the seed as given
    assert sweeper.params


def test_one_failing_trial_of_a_batch_is_recorded_and_the_search_goes_on(tmp_path):
    _search(tmp_path, "one_bad", "${hydra:job.num}")
    result = ok(dlrun(tmp_path, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "hparams_search=one_bad",
                      "hydra.sweeper.n_trials=4"))
    states = sorted(t.state.name for t in _study(tmp_path, "one_bad").trials)
    assert states == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL"]
    [sweep] = run_folders(tmp_path, "multirun")
    runs = [read_json(job / "run.json") for job in job_folders(sweep)]
    [failed] = [r for r in runs if r["status"] == "failed"]
    assert failed == runs[0]
    assert "intercept_scaling" in failed["error"]["message"]
    assert "Best value" in result.stdout + result.stderr


def test_a_batch_that_fails_whole_stops_the_search(tmp_path):
    _search(tmp_path, "all_bad", "0")
    result = dlrun(tmp_path, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "hparams_search=all_bad",
                   "hydra.sweeper.n_trials=4")
    assert result.returncode != 0
    assert "Failed" in result.stdout + result.stderr and "max_failure_rate=0.5" in result.stdout + result.stderr
    assert [t.state.name for t in _study(tmp_path, "all_bad").trials] == ["FAIL", "FAIL"]  # no second batch


def test_the_sampler_seed_counts_the_trials_a_study_holds(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert trials_so_far(storage, "x") == 0
    assert trials_so_far(None, "x") == 0
    study = optuna.create_study(study_name="x", storage=storage)
    study.optimize(lambda trial: trial.suggest_float("v", 0, 1), n_trials=3)
    assert trials_so_far(storage, "x") == 3
    assert study_seed(7, storage, "y") == 7  # a new study: the run's seed
    assert study_seed(None, storage, "x") is None
    # resumed: a seed of its own for each count of trials held, whose first draws are not those of the
    # new study's (numpy's generators seeded 0 and 3 start at 0.5488 and 0.5508)
    resumed = [study_seed(0, storage, "x")]
    study.optimize(lambda trial: trial.suggest_float("v", 0, 1), n_trials=1)
    resumed.append(study_seed(0, storage, "x"))
    assert resumed[0] != resumed[1] and study_seed(0, storage, "x") == resumed[1]  # reproducible
    first = np.random.RandomState(0).random_sample()
    assert all(abs(np.random.RandomState(s).random_sample() - first) > 0.05 for s in resumed), resumed


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # enqueue_trial, in optuna 2
def test_interrupted_trials_are_told_their_value_when_their_job_finished(tmp_path):
    """A search stopped mid-batch: a trial whose job had completed (run.json, with the trial's
    overrides) gets its value; the one still running is marked FAIL; none stays RUNNING."""
    import json

    import yaml
    from optuna.distributions import CategoricalDistribution

    from runner.studies import settle_interrupted_trials

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="cut", storage=storage, direction="maximize")
    for size in (6, 8):  # two trials with different overrides
        study.enqueue_trial({"adapter.configuration.image_size": size})
    trials = [study.ask({"adapter.configuration.image_size": CategoricalDistribution([6, 8])}) for _ in range(2)]
    assert [t.params for t in trials] == [{"adapter.configuration.image_size": 6}, {"adapter.configuration.image_size": 8}]
    for trial in trials:
        trial.set_user_attr("hparams_search", "digits_optuna")
    sweep = tmp_path / "sweep"
    for job, (trial, status) in enumerate(zip(trials, ("completed", "failed"), strict=True)):
        (sweep / str(job) / ".hydra").mkdir(parents=True)
        (sweep / str(job) / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(
            [f"adapter.configuration.image_size={trial.params['adapter.configuration.image_size']}",
             "hparams_search=digits_optuna"]))
        (sweep / str(job) / "run.json").write_text(json.dumps(
            {"status": status, "objective": {"value": 0.9 if status == "completed" else None}}))

    assert settle_interrupted_trials(storage, "cut", since=0.0, sweep_dirs=[sweep]) == (1, 1)
    states = [(t.state.name, t.value) for t in optuna.load_study(study_name="cut", storage=storage).trials]
    assert states == [("COMPLETE", 0.9), ("FAIL", None)]


def test_the_study_line_tells_earlier_runs_this_sweep_and_another_search_at_the_same_time_apart(tmp_path):
    """Trials begun before the search are its earlier runs; trials begun since that are not its jobs
    came from another search of the same study (or were stopped before their jobs began); the best
    trial is placed by when it began and whether a job of this sweep holds its value and params."""
    import json
    import time

    from runner.studies import running_trials_warning, study_line

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="shared", storage=storage, direction="maximize")
    distribution = {"x": optuna.distributions.UniformDistribution(0.0, 1.0)}
    study.add_trial(optuna.trial.create_trial(params={"x": 0.1}, distributions=distribution, value=0.5))
    time.sleep(0.05)
    since = time.time()
    time.sleep(0.05)
    mine = study.ask(distribution)
    study.tell(mine, 0.7)
    sweep = tmp_path / "sweep"
    (sweep / "0" / ".hydra").mkdir(parents=True)
    (sweep / "0" / "run.json").write_text(json.dumps({"status": "completed", "objective": {"value": 0.7}}))
    (sweep / "0" / ".hydra" / "overrides.yaml").write_text(f"- x={mine.params['x']}\n")
    other = study.ask(distribution)  # another search's trial, still running
    assert running_trials_warning(storage, "shared").startswith(f"study 'shared' holds 1 running trials (numbers "
                                                                f"{other.number}): another search of it")
    line = study_line(storage, "shared", since, sweep, 1, "accuracy")
    assert line == ("study 'shared': 3 trials (1 from its earlier runs, resumed here; 1 more begun meanwhile without "
                    "a job of this sweep: trials it asked for and stopped before their jobs began, or another search "
                    f"of the study at the same time); the study's best: accuracy 0.7000, trial {mine.number}, from this sweep"), line
    study.tell(other, 0.9)
    assert study_line(storage, "shared", since, sweep, 1, "accuracy").endswith(
        f"accuracy 0.9000, trial {other.number}, from another search of it")
    assert running_trials_warning(storage, "shared") is None
    assert study_line(storage, "shared", time.time() + 60, sweep, 0, None).endswith("from an earlier run of it")


def test_the_study_line_names_the_version_of_the_best_trial_and_the_trials_this_sweep_ran(tmp_path):
    """This sweep's job that ran the best trial names its version; a trial of an earlier run is found
    in the local platform, by the run folder its version records; a resumed sweep's jobs are trials
    numbered on from the earlier ones."""
    import json
    import time

    from runner.platform.local import LocalPlatform
    from runner.studies import study_line
    from runner.trial_versions import TrialVersions

    def job(folder, x, value, version):
        (folder / ".hydra").mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"status": "completed", "objective": {"value": value},
                                                     "model": {"name": version}}))
        (folder / ".hydra" / "overrides.yaml").write_text(f"- x={x}\n")
        (folder / ".hydra" / "hydra.yaml").write_text("hydra:\n  mode: MULTIRUN\n")  # a sweep's job

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    distribution = {"x": optuna.distributions.UniformDistribution(0.0, 1.0)}
    first = study.ask(distribution)
    job(tmp_path / "earlier" / "0", first.params["x"], 0.8, "v-first")
    study.tell(first, 0.8)
    platform = LocalPlatform(tmp_path / "platform")
    rerun = tmp_path / "outputs" / "again"  # the trial run again (hydra.mode=RUN): same overrides and value
    job(rerun, first.params["x"], 0.8, "v-rerun")
    (rerun / ".hydra" / "hydra.yaml").write_text("hydra:\n  mode: RUN\n")
    for name, run in (("v-other", tmp_path / "nowhere"), ("v-first", tmp_path / "earlier" / "0"), ("v-rerun", rerun)):
        model = platform.create_model(name, None)
        model.metadata.setdefault("user", {})["runner"] = {"run": str(run)}
        model.update()
    time.sleep(0.05)
    since = time.time()
    sweep = tmp_path / "sweep"
    for i in range(2):
        trial = study.ask(distribution)
        job(sweep / str(i), trial.params["x"], 0.5 + i / 10, f"v-{i}")
        study.tell(trial, 0.5 + i / 10)

    line = study_line(storage, "s", since, sweep, 2, "accuracy", version_of=TrialVersions.at(str(platform.root), "local"))
    assert line == ("study 's': 3 trials (1 from its earlier runs, resumed here; this sweep's jobs are trials 1-2); "
                    "the study's best: accuracy 0.8000, trial 0, from an earlier run of it, model version v-first"), line
    best = study.ask(distribution)
    job(sweep / "2", best.params["x"], 0.95, "v-2")
    study.tell(best, 0.95)
    assert study_line(storage, "s", since, sweep, 3, "accuracy").endswith(
        "(1 from its earlier runs, resumed here; this sweep's jobs are trials 1-3); the study's best: accuracy 0.9500, "
        "trial 3, from this sweep, model version v-2")
    # a platform that is not there, or holds no such run: the line goes on without a name
    assert TrialVersions.at(str(tmp_path / "none"), "local") is None and not (tmp_path / "none").exists()
    assert TrialVersions.at(str(platform.root), "local")(study.trials[1]) is None


def test_the_store_lists_studies_with_the_version_of_each_best_and_deletes_one(tmp_path, capsys):
    """``runner.store studies``: each study's search, trials by state and best trial, named by the
    version whose run scored it; ``delete-study`` deletes the study and names the versions that stay."""
    import json

    from runner.platform.local import LocalPlatform
    from runner.store import main

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    platform = LocalPlatform(tmp_path / "platform")
    distribution = {"x": optuna.distributions.UniformDistribution(0.0, 1.0)}
    for name, values in (("first", (0.6, 0.9, None)), ("second", (0.3,))):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        for i, value in enumerate(values):
            trial = study.ask(distribution)
            trial.set_user_attr("hparams_search", "digits_optuna")
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            run = tmp_path / name / str(i)
            (run / ".hydra").mkdir(parents=True)
            (run / "run.json").write_text(json.dumps({"status": "completed", "objective": {"value": value}}))
            (run / ".hydra" / "overrides.yaml").write_text(f"- x={trial.params['x']}\n")
            (run / ".hydra" / "hydra.yaml").write_text("hydra:\n  mode: MULTIRUN\n")  # a sweep's job
            study.tell(trial, value)
            model = platform.create_model(f"{name}-v{i}", None)
            model.metadata.setdefault("user", {})["runner"] = {"run": str(run)}
            model.update()

    def store(*args):
        code = main(["--root", str(platform.root), *args, "--storage", str(tmp_path / "studies.db")])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = store("studies", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["first"]["states"] == {"complete": 2, "failed": 1} and rows["first"]["search"] == "digits_optuna"
    assert (rows["first"]["best"]["value"], rows["first"]["best"]["trial"], rows["first"]["best"]["version"]) == \
        (0.9, 1, "first-v1")
    assert rows["second"]["best"]["version"] == "second-v0"
    code, out, err = store("studies")
    assert code == 0 and re.search(r"^first +digits_optuna +3 \(2 complete, 1 failed\) +maximize +0\.9000 +1 +first-v1 ",
                                   out, re.MULTILINE), out

    code, out, err = store("delete-study", "frist", "--yes")
    assert code == 2 and "no study named 'frist' (did you mean first?)" in err and "nothing was deleted" in err
    code, out, err = store("delete-study", "first", "--yes")
    assert code == 0, err
    assert ("deleted study 'first' (3 trials) from sqlite:///" in out and "the 2 model version(s) its trials trained "
            "stay in the store: first-v0, first-v1 (python -m runner.store delete-model first-v0 first-v1") in out, out
    assert [r["name"] for r in json.loads(store("studies", "--json")[1])] == ["second"]
    assert [m.name for m in platform.list_models()] == ["first-v0", "first-v1", "second-v0"]  # the versions stay
    code, out, err = main(["studies", "--storage", str(tmp_path / "none.db")]), *capsys.readouterr()
    assert code == 2 and f"no studies file at {tmp_path / 'none.db'}" in err and not (tmp_path / "none.db").exists()


def test_settle_study_tells_the_trials_a_killed_search_left_running_from_its_sweep_folders(tmp_path, capsys):
    """kill -9 leaves its trials RUNNING, and their finished values out of the study's best: the jobs
    of the given sweep folders that finished settle them; the rest are marked failed."""
    import json

    import yaml
    from optuna.distributions import CategoricalDistribution

    from runner.store import main

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="killed", storage=storage, direction="maximize")
    space = {"adapter.configuration.image_size": CategoricalDistribution([4, 6, 8])}
    for size in (4, 6, 8):
        study.enqueue_trial({"adapter.configuration.image_size": size})
    trials = [study.ask(space) for _ in range(3)]  # as a search asks for them; none told: it was killed
    for folder, job, size in (("first", "0", 4), ("second", "0", 6)):
        run = tmp_path / folder / job
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"adapter.configuration.image_size={size}"]))
        (run / "run.json").write_text(json.dumps({"status": "completed", "objective": {"value": size / 10}}))

    def store(*args):
        code = main([*args, "--storage", str(tmp_path / "studies.db")])
        out, err = capsys.readouterr()
        return code, out + err

    code, said = store("settle-study", "kiled")
    assert code == 2 and "no study named 'kiled' (did you mean killed?)" in said
    code, said = store("settle-study", "killed", "--sweep", str(tmp_path / "nowhere"))
    assert code == 2 and f"there is no sweep folder {tmp_path / 'nowhere'}" in said
    assert all(t.state.name == "RUNNING" for t in optuna.load_study(study_name="killed", storage=storage).trials)

    code, said = store("settle-study", "killed", "--sweep", str(tmp_path / "first"), "--sweep", str(tmp_path / "second"))
    assert code == 0 and "study 'killed': 2 running trial(s) had finished (told their value), 1 marked failed" in said
    settled = optuna.load_study(study_name="killed", storage=storage)
    assert [(t.number, t.state.name, t.value) for t in settled.trials] == [
        (trials[0].number, "COMPLETE", 0.4), (trials[1].number, "COMPLETE", 0.6), (trials[2].number, "FAIL", None)]
    assert settled.best_value == 0.6
    code, said = store("settle-study", "killed")
    assert code == 0 and "0 running trial(s) had finished (told their value), 0 marked failed (it held no running " \
        "trial a job settles)" in said
