"""One run at a time in a run folder: a folder another process's run holds is refused, before Hydra
writes into it (``argv_checks``) and again as the run starts (``app.run``); a killed run holds nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runner import app, run_lock
from runner.argv_checks import run_dir_in_use_problem
from runner.errors import ConfigError

HOLD = ("import sys, time\n"
        "from pathlib import Path\n"
        "from runner import run_lock\n"
        "with run_lock.held(Path(sys.argv[1])) as ours:\n"
        "    print(ours, flush=True)\n"
        "    time.sleep(60)\n")


@pytest.fixture
def held_by_another_process(tmp_path):
    folder = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "True\n"
        yield folder, process.pid
    finally:
        process.kill()
        process.wait()


def test_a_folder_a_running_run_holds_is_refused_before_hydra_and_as_the_run_starts(held_by_another_process):
    folder, pid = held_by_another_process
    assert run_lock.holder(folder) == pid
    problem = run_dir_in_use_problem([f"hydra.run.dir={folder}"])
    assert problem.startswith(f"another run (process {pid}) is running in {folder}: two runs in one folder would "
                              "mix their outputs\n  where: hydra.run.dir="), problem
    sweep = run_dir_in_use_problem(["-m", f"hydra.sweep.dir={folder.parent}", "seed=0,1"])  # a job folder of it
    assert sweep is None  # "run" is not a job folder's name; a numbered one is
    (folder.parent / "0").symlink_to(folder)
    assert f"is running in {folder.parent / '0'}" in run_dir_in_use_problem(["-m", f"hydra.sweep.dir={folder.parent}"])
    with run_lock.held(folder) as ours:
        assert ours is False
    with pytest.raises(ConfigError) as refused:
        app.run(None, folder)  # refused before the config is read
    assert refused.value.what.startswith(f"another run (process {pid}) is running in {folder}")
    assert not (folder / "run.json").exists()


def test_a_run_killed_outright_holds_its_folder_no_longer(tmp_path):
    folder = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "True\n"
    process.kill()
    process.wait()
    assert (folder / run_lock.LOCK_FILE).exists() and run_lock.holder(folder) is None
    assert run_dir_in_use_problem([f"hydra.run.dir={folder}"]) is None
    with run_lock.held(folder) as ours:
        assert ours is True and run_lock.holder(folder) == os.getpid()
    assert not (folder / run_lock.LOCK_FILE).exists()  # a run that ends leaves no lock file
