"""A sweep of 8 short jobs on the joblib launcher (2 processes) against Hydra's basic launcher.

    python benchmarks/sweep_launcher_bench.py                      # 8 torch_cnn jobs of 12 epochs
    python benchmarks/sweep_launcher_bench.py --job adapter=sklearn_svc

Both sweeps run ``python -m runner -m seed=0,...,7 <job>`` as the user would, in the same working
folder and on the same local platform, which a first single run has already filled (the digits
import and the base model), so both do the same work. Times are wall times of the whole command:
the joblib figure includes starting its worker processes. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets DATALOOP_PATH to a temp folder)

NAME = "sweep_launcher_bench"
TARGET = 1.7
JOBS = 8
# a short job (about 4 s of work) that keeps one core busy: a small CNN on one torch thread
DEFAULT_JOB = ["adapter=torch_cnn", "adapter.configuration.epochs=12", "adapter.configuration.num_threads=1"]


def dlrun(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def completed(sweep: Path) -> int:
    return sum(json.loads(p.read_text())["status"] == "completed" for p in sweep.glob("*/run.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--job", nargs="*", default=DEFAULT_JOB, help="overrides of every job")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    print(C.machine_line())
    cwd = Path(C.temp_dir("bench-sweep-"))
    start = time.perf_counter()
    dlrun(cwd, *args.job, "hydra.run.dir=warmup")
    print(f"one job alone (with the digits import): {time.perf_counter() - start:.1f}s")

    seeds = "seed=" + ",".join(str(i) for i in range(JOBS))
    launchers = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
    best = dict.fromkeys(launchers, float("inf"))
    for attempt in range(args.repeats):
        for name, launcher in launchers.items():
            sweep = cwd / f"{name}-{attempt}"
            start = time.perf_counter()
            dlrun(cwd, "-m", *launcher, seeds, *args.job, f"hydra.sweep.dir={sweep}")
            wall = time.perf_counter() - start
            assert completed(sweep) == JOBS, f"{name}: {completed(sweep)} of {JOBS} jobs completed"
            best[name] = min(best[name], wall)
            print(f"  {name:6s} launcher, {JOBS} jobs: {wall:.1f}s (load average now {os.getloadavg()[0]:.2f})")
    speedup = best["basic"] / best["joblib"]
    C.print_results([C.result(NAME, f"{JOBS} jobs ({' '.join(args.job)}), joblib n_jobs=2 vs basic:",
                              f"x{speedup:.2f} ({best['basic']:.1f}s vs {best['joblib']:.1f}s)", f">= x{TARGET}",
                              speedup >= TARGET)])


if __name__ == "__main__":
    main()
