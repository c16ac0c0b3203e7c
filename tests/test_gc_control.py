"""The garbage collector around CLI jobs: paused while the adapter's module loads, then on with the
libraries' objects frozen, a job's garbage collected when it ends and what it keeps frozen."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import weakref

from runner.gc_control import collection_paused, job_heap, libraries_loading_in_job

PROBE = '''
import gc, json, os, weakref
from adapters.sklearn_classifier import SklearnImageClassifier

def _note(**fields):
    with open(os.environ["GC_PROBE"], "a") as f:
        f.write(json.dumps(fields) + "\\n")

_note(at="import", enabled=gc.isenabled())
_cycles = []  # a weak reference to a reference cycle each job leaves as garbage

class _Cycle:
    def __init__(self):
        self.me = self

class Probe(SklearnImageClassifier):
    def load(self, local_path, **kwargs):
        _note(at="load", enabled=gc.isenabled())
        return super().load(local_path, **kwargs)

    def train(self, data_path, output_path, **kwargs):
        _note(at="train", enabled=gc.isenabled(), frozen=gc.get_freeze_count() > 100_000,
              earlier_garbage_alive=[ref() is not None for ref in _cycles])
        _cycles.append(weakref.ref(_Cycle()))
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


class _Cycle:
    def __init__(self):
        self.me = self


def _frozen(obj) -> bool:
    """Out of the collector's reach: gc.get_objects() lists every tracked object except the frozen."""
    return not any(tracked is obj for tracked in gc.get_objects())


def test_job_heap_freezes_what_is_alive_and_collects_the_jobs_garbage_even_when_it_raises():
    before_job = [[]]
    try:
        gc.unfreeze()
        try:
            with job_heap():
                assert _frozen(before_job)  # out of reach of the job's passes
                with collection_paused():  # a library loading inside the job: frozen once loaded
                    library = [[]]
                assert _frozen(library) and gc.isenabled()
                with libraries_loading_in_job():  # a user function that may import libraries
                    assert not gc.isenabled()
                    loaded = [[]]
                assert _frozen(loaded) and gc.isenabled()
                kept = [[]]
                cycle = _Cycle()
                garbage = weakref.ref(cycle)
                del cycle
                assert not _frozen(kept)
                raise RuntimeError("a job that fails")
        except RuntimeError:
            pass
        assert garbage() is None  # collected when the job ended, not frozen with what it kept
        assert _frozen(kept) and gc.isenabled()
        with collection_paused():  # outside a job: the pause alone
            outside = [[]]
        assert not _frozen(outside) and gc.isenabled()
        with libraries_loading_in_job():  # outside a job: nothing at all
            assert gc.isenabled()
            also_outside = [[]]
        assert not _frozen(also_outside)
    finally:
        gc.unfreeze()


def test_cli_jobs_run_with_their_libraries_frozen_and_collect_their_garbage(tmp_path):
    (tmp_path / "gc_probe.py").write_text(PROBE)
    notes = tmp_path / "notes.jsonl"
    env = {**os.environ, "DATALOOP_PATH": str(tmp_path / "dl"), "GC_PROBE": str(notes),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [json.loads(line) for line in notes.read_text().splitlines()]
    # the module loads once, in the first job's plan, with the collector paused, and so does each
    # job's load (where adapters often import their libraries); each job trains with it on and the
    # libraries frozen; the first job's garbage was collected when it ended
    assert seen == [{"at": "import", "enabled": False},
                    {"at": "load", "enabled": False},
                    {"at": "train", "enabled": True, "frozen": True, "earlier_garbage_alive": []},
                    {"at": "load", "enabled": False},
                    {"at": "train", "enabled": True, "frozen": True, "earlier_garbage_alive": [False]}]
    [after] = [line for line in result.stdout.splitlines() if line.startswith("after ")]
    _, enabled, frozen = after.split()
    assert enabled == "True"
    assert int(frozen) > 100_000  # the libraries' objects, skipped by the collector at exit
