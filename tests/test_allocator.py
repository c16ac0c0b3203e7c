"""The batch pipeline keeps freed memory for reuse instead of faulting it in again every batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc thresholds")

# a fresh process frees a 30 MiB block (glibc's adaptive threshold follows it), then allocates and
# frees 75 MiB per round: the heap top then exceeds twice that threshold and is trimmed each round
ROUNDS = """
import json, resource, sys
import numpy as np
{setup}
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.ones(30 << 20, np.uint8)
del block
counts = []
for _ in range(4):
    before = faults()
    buffers = [np.ones(25 << 20, np.uint8) for _ in range(3)]
    del buffers
    counts.append(faults() - before)
print(json.dumps({{"applied": applied, "faults": counts[1:]}}))
"""


def run_rounds(setup: str, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", ROUNDS.format(setup=setup)], env={**clean, **env},
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pipeline_batches_reuse_freed_memory():
    keep = """
from runner.batching import BatchRunner
runner = BatchRunner(1)
runner.run([], 4, lambda item: item, lambda batch: batch, None, keep_outputs=False)
from runner.allocator import keep_freed_memory
applied = keep_freed_memory()
"""
    with_pipeline = run_rounds(keep)
    without = run_rounds("applied = False")
    assert with_pipeline["applied"] is True
    assert max(with_pipeline["faults"]) < 100
    # the same rounds fault their pages in again each time with glibc's own thresholds
    assert min(without["faults"]) > 10 * max(max(with_pipeline["faults"]), 10)


def test_the_environment_s_malloc_settings_win():
    result = run_rounds("from runner.allocator import keep_freed_memory\napplied = keep_freed_memory()",
                        MALLOC_TRIM_THRESHOLD_="1048576")
    assert result["applied"] is False
