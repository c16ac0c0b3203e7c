"""The launcher plugins: their extras install together, each ready config composes onto the
plugin's schema, and sweeps run on joblib, Ray and submitit as real subprocesses."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from packaging.requirements import Requirement

from runner.argv_checks import LAUNCHER_PLUGINS
from tests.test_cli import CONF_DIR, REPO, dlrun, job_folders, ok, read_json, run_folders

LAUNCHER_EXTRAS = ("joblib", "ray", "submitit", "launchers")


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _requirements(extra: str, seen: set[str] | None = None) -> list[Requirement]:
    """An extra's requirements, following self-references like ``adapter-runner[joblib,ray]``."""
    seen = set() if seen is None else seen
    out = []
    for spec in _extras()[extra]:
        requirement = Requirement(spec)
        if requirement.name == "adapter-runner":
            for inner in sorted(requirement.extras - seen):
                seen.add(inner)
                out += _requirements(inner, seen)
        else:
            out.append(requirement)
    return out


@pytest.mark.parametrize("extra", LAUNCHER_EXTRAS)
def test_the_installed_packages_satisfy_each_launcher_extra(extra):
    for requirement in _requirements(extra):
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), f"{requirement} but {installed} is installed"


def test_the_ray_extra_holds_the_versions_that_install_with_joblib_and_the_optuna_sweeper():
    ray = {r.name: r for r in _requirements("ray")}
    assert not ray["cloudpickle"].specifier.contains("3.0.0")  # what hydra-ray-launcher requires
    assert not ray["joblib"].specifier.contains("1.6.0")  # joblib 1.6 requires cloudpickle>=3
    assert ray["joblib"].specifier.contains(metadata.version("joblib"))
    assert metadata.version("cloudpickle") < "3"
    assert metadata.version("optuna") < "3" and metadata.version("sqlalchemy") < "2"


def test_pip_finds_no_broken_requirement():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("launcher, target, settings", [
    ("joblib", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", {"n_jobs": -1, "prefer": "processes"}),
    ("ray", "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher", {}),
    ("submitit_local", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher", {"mem_gb": 4}),
    ("submitit_slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
     {"cpus_per_task": 2, "timeout_min": 60, "partition": None}),
])
def test_each_ready_launcher_config_composes_onto_the_plugin_schema(launcher, target, settings):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    node = cfg.hydra.launcher
    assert node._target_ == target
    assert get_class(node._target_).__name__ == target.rsplit(".", 1)[1]
    for key, value in settings.items():
        assert node[key] == value
    if launcher == "ray":
        assert node.ray.init.address is None and node.ray.remote.num_cpus == 1
    assert launcher in LAUNCHER_PLUGINS


def test_a_launcher_whose_plugin_is_missing_names_the_extra(tmp_path):
    # the plugin made unimportable, as on a machine without the extra
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('hydra_plugins.hydra_ray_launcher'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['runner', '-m', 'hydra/launcher=ray', 'seed=0,1']\n"
        "from runner.cli import entry\n"
        "entry()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "hydra/launcher=ray needs the hydra-ray-launcher plugin" in result.stderr
    assert f'pip install -e "{REPO}[ray]"' in result.stderr  # from any folder
    assert not (tmp_path / "multirun").exists()


def _completed_jobs(tmp_path, count: int) -> list[dict]:
    [sweep] = run_folders(tmp_path, "multirun")
    jobs = job_folders(sweep)
    assert len(jobs) == count
    runs = [read_json(job / "run.json") for job in jobs]
    assert [r["status"] for r in runs] == ["completed"] * count
    assert len({r["model"]["id"] for r in runs}) == count  # each job trained its own version
    for job, run in zip(jobs, runs, strict=True):
        assert read_json(job / "metrics.json")["accuracy"] == pytest.approx(run["objective"]["value"])
    assert (sweep / "sweep_report.csv").is_file()
    return runs


def test_a_sweep_on_the_joblib_launcher(tmp_path):
    result = ok(dlrun(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1"))
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    _completed_jobs(tmp_path, 2)


@pytest.mark.xdist_group("ray")  # one local Ray at a time on the machine
def test_a_sweep_on_a_local_ray(tmp_path):
    pytest.importorskip("ray")
    result = ok(dlrun(tmp_path, "-m", "hydra/launcher=ray", "hydra.launcher.ray.init.num_cpus=2", "seed=0,1"))
    assert "Ray Launcher is launching 2 jobs" in result.stdout + result.stderr
    _completed_jobs(tmp_path, 2)


def test_a_sweep_on_submitit_local(tmp_path):
    result = ok(dlrun(tmp_path, "-m", "hydra/launcher=submitit_local", "seed=0,1"))
    assert "Submitit 'local' sweep" in result.stdout + result.stderr
    _completed_jobs(tmp_path, 2)
    [sweep] = run_folders(tmp_path, "multirun")
    assert (sweep / ".submitit").is_dir()  # submitit's own logs, per job


def test_sharding_inside_a_joblib_job_predicts_in_the_job_process(tmp_path):
    result = ok(dlrun(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1",
                      "sharding.workers=2"))
    assert "running every shard in this process" in result.stdout + result.stderr
    runs = _completed_jobs(tmp_path, 2)
    assert all(r["objective"]["value"] > 0.9 for r in runs)


def test_sigterm_to_a_joblib_sweep_ends_its_running_jobs_as_interrupted(tmp_path):
    """A scheduler's SIGTERM reaches the sweep's whole process group: each worker's running job is
    recorded as interrupted and its model version as failed, none is left 'running' / 'training';
    the jobs the workers would take next, during the sweep's grace period, do not start."""
    import os
    import signal
    import time

    from runner.platform.local import LocalPlatform

    env = {**os.environ, "DATALOOP_PATH": str(tmp_path / "dl")}
    ok(dlrun(tmp_path, "pipeline=train", "adapter=torch_cnn", "adapter.configuration.epochs=1"))  # import, base model
    process = subprocess.Popen([sys.executable, "-m", "runner", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                "adapter=torch_cnn", "adapter.configuration.epochs=500", "seed=0,1,2,3",
                                "hydra.sweep.dir=sweep"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    logs = [tmp_path / "sweep" / job / "dlrun.log" for job in ("0", "1")]
    try:
        deadline = time.monotonic() + 240
        while not all(log.exists() and "epoch 2/500 done" in log.read_text() for log in logs):
            assert time.monotonic() < deadline and process.poll() is None, "the jobs did not start training"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    for job in ("0", "1"):
        record = read_json(tmp_path / "sweep" / job / "run.json")
        assert (record["status"], record["error"]["message"]) == ("failed", "interrupted by SIGTERM")
    for job in ("2", "3"):  # handed to a worker during the grace, or never: not run, and not left 'running'
        if (tmp_path / "sweep" / job / "run.json").exists():
            record = read_json(tmp_path / "sweep" / job / "run.json")
            assert (record["status"], record["model"]) == ("not started", None), record
            assert record["error"]["message"] == "stopped by SIGTERM before it began"
    assert "no further job started" in stderr
    platform = LocalPlatform(tmp_path / "dl" / "local")
    assert sorted(m.status for m in platform.list_models()) == ["created", "failed", "failed", "trained"]
    failed = [read_json(tmp_path / "sweep" / job / "run.json")["model"]["name"] for job in ("0", "1")]
    assert read_json(tmp_path / "sweep" / "0" / "run.json")["error"]["type"] == "Terminated"
    # the versions the workers' stopped jobs leave are named, with the command that removes them
    assert (f"kept: 2 model version(s) of the jobs that stopped: {failed[0]} (status failed), {failed[1]} (status "
            f"failed); python -m runner.store show <version> gives the commands that go on with one, python -m "
            f"runner.store delete-model {failed[0]} {failed[1]} removes them") in stderr, stderr
