"""dtlpy's import-time clean-up must not touch DATALOOP_PATH when the runner is imported first."""

from __future__ import annotations

import os
import subprocess
import sys
import time

OLD = time.time() - 40 * 24 * 3600  # dtlpy's clean-up deletes files not modified for 30 days


def python(code: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATALOOP_PATH": str(home)}
    return subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


def old_files(home):
    paths = [home / "local" / "store.sqlite", home / "local" / "blobs" / "ab" / "abcdef",
             home / "models" / "digits" / "weights.pt", home / "studies" / "optuna.db"]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"kept")
        os.utime(path, (OLD, OLD))
    return paths


def test_runner_first_keeps_old_files_and_writes_no_dtlpy_log(tmp_path):
    home = tmp_path / "dataloop"
    paths = old_files(home)
    result = python(
        "import runner, dtlpy, threading, time\n"
        "time.sleep(0.5)\n"
        "print(sorted(t.name for t in threading.enumerate()))\n", home)
    assert result.returncode == 0, result.stderr
    assert "clean_dataloop_cache" not in result.stdout
    assert [p for p in paths if not p.exists()] == []
    assert [p.read_bytes() for p in paths] == [b"kept"] * len(paths)
    assert list((home / "logs").glob("*.log")) == []


def test_dtlpy_warnings_still_reach_stderr_or_the_root_logger(tmp_path):
    result = python(
        "import runner, logging, dtlpy\n"
        "log = logging.getLogger('dtlpy.repositories')\n"
        "log.info('not shown')\n"
        "log.warning('shown on stderr')\n"
        "dtlpy.verbose.logging_level = 'error'\n"  # as with dtlpy's own set-up: the level of handlers[0]
        "log.warning('filtered by dl.verbose')\n"
        "logging.basicConfig(format='root: %(name)s %(message)s')\n"
        "log.warning('shown once, through the root logger')\n", tmp_path / "dataloop")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["shown on stderr", "root: dtlpy.repositories shown once, through the root logger"]


def test_dtlpy_imported_first_warns_when_a_local_store_is_there(tmp_path):
    home = tmp_path / "dataloop"
    (home / "local").mkdir(parents=True)
    result = python("import dtlpy, runner", home)
    assert result.returncode == 0, result.stderr
    assert "RuntimeWarning: dtlpy was imported before runner" in result.stderr
    assert str(home / "local") in result.stderr

    quiet = python("import dtlpy, runner", tmp_path / "empty")
    assert quiet.returncode == 0, quiet.stderr
    assert "imported before runner" not in quiet.stderr


def test_a_shipped_adapter_imported_first_brings_runner_first(tmp_path):
    """``adapters/__init__`` imports runner, so a script that starts with a shipped adapter (which
    imports dtlpy) keeps the store's old files and gets no import-order warning."""
    home = tmp_path / "dataloop"
    paths = old_files(home)
    result = python("import adapters.sklearn_classifier, time\ntime.sleep(0.5)\n", home)
    assert result.returncode == 0, result.stderr
    assert "imported before runner" not in result.stderr
    assert [p for p in paths if not p.exists()] == []


def test_dataloop_path_exists_before_dtlpy_is_imported(tmp_path):
    """dtlpy's import makes $DATALOOP_PATH by check-then-create, so parallel jobs on a fresh one (a
    submitit or joblib sweep) raced into FileExistsError; the runner makes it before dtlpy loads."""
    home = tmp_path / "fresh" / "dl"
    code = (
        "import os, sys\n"
        "seen = []\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'dtlpy':\n"
        "            seen.append(os.path.isdir(os.environ['DATALOOP_PATH']))\n"
        "sys.meta_path.insert(0, Watch())\n"
        "import runner\n"
        "import dtlpy\n"
        "print(seen)\n")
    result = python(code, home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[True]"
