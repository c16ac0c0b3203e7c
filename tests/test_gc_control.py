"""The garbage collector around CLI jobs: paused while the adapter's module loads, on while the job
runs, the heap frozen when a job ends and thawed when the next job in the process starts."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap

from runner.gc_control import collection_paused, job_heap

PROBE = '''
import gc, json, os
from adapters.sklearn_classifier import SklearnImageClassifier

def _note(**fields):
    with open(os.environ["GC_PROBE"], "a") as f:
        f.write(json.dumps(fields) + "\\n")

_note(at="import", enabled=gc.isenabled())

class Probe(SklearnImageClassifier):
    def train(self, data_path, output_path, **kwargs):
        _note(at="train", enabled=gc.isenabled(), frozen=gc.get_freeze_count())
        return super().train(data_path, output_path, **kwargs)
'''

SCRIPT = '''
import gc, sys
sys.argv = ["dlrun", "-m", "adapter=sklearn", "adapter._target_=gc_probe.Probe", "seed=0,1",
            "pipeline=train", "hydra.sweep.dir=sweep"]
from runner.cli import entry
entry()
print("after", gc.isenabled(), gc.get_freeze_count())
'''


def test_collection_paused_restores_the_collectors_state():
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()


def test_job_heap_thaws_first_and_freezes_at_the_end_even_when_the_job_raises():
    kept = [[] for _ in range(1000)]  # noqa: F841 - objects the collector tracks, alive across both jobs
    try:
        for _ in range(2):
            try:
                with job_heap():
                    assert gc.get_freeze_count() == 0
                    raise RuntimeError("a job that fails")
            except RuntimeError:
                pass
            assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def test_cli_jobs_pause_freeze_and_thaw_the_collector(tmp_path):
    (tmp_path / "gc_probe.py").write_text(PROBE)
    notes = tmp_path / "notes.jsonl"
    env = {**os.environ, "DATALOOP_PATH": str(tmp_path / "dl"), "GC_PROBE": str(notes),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [json.loads(line) for line in notes.read_text().splitlines()]
    # the module loads once, in the first job's plan, with the collector paused; each job trains
    # with it on and nothing frozen: the second job thawed what the first froze
    assert seen == [{"at": "import", "enabled": False},
                    {"at": "train", "enabled": True, "frozen": 0},
                    {"at": "train", "enabled": True, "frozen": 0}]
    [after] = [line for line in result.stdout.splitlines() if line.startswith("after ")]
    _, enabled, frozen = after.split()
    assert enabled == "True"
    assert int(frozen) > 100_000  # the libraries' objects, skipped by the collector at exit
