"""A sweep of 8 short jobs on the joblib launcher (2 processes) against Hydra's basic launcher.

    python benchmarks/sweep_launcher_bench.py                      # 8 torch_cnn jobs of 12 epochs, then of 40
    python benchmarks/sweep_launcher_bench.py --job adapter=sklearn_svc --longer-job

Both sweeps run ``python -m runner -m seed=0,...,7 <job>`` as the user would, in the same working
folder and on the same local platform, which a first single run has already filled (the digits
import and the base model), so both do the same work. Times are wall times of the whole command:
the joblib figure includes starting its worker processes. Figures only: nothing is asserted.

The target applies to the short job. The same sweep of longer jobs (``--longer-job``, default 40
epochs: about 8 s of work each) follows as information: it shows how much of the short sweep's gap
is start-up and end that every sweep pays once, whatever its jobs.
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
LONGER_JOB = ["adapter=torch_cnn", "adapter.configuration.epochs=40", "adapter.configuration.num_threads=1"]


def dlrun(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def completed(sweep: Path) -> int:
    return sum(json.loads(p.read_text())["status"] == "completed" for p in sweep.glob("*/run.json"))


def sweep_speedup(cwd: Path, job: list[str], repeats: int, tag: str) -> tuple[float, dict[str, float]]:
    """Best wall time of the 8-job sweep on each launcher, alternating; returns (basic / joblib, bests)."""
    seeds = "seed=" + ",".join(str(i) for i in range(JOBS))
    launchers = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
    best = dict.fromkeys(launchers, float("inf"))
    for attempt in range(repeats):
        for name, launcher in launchers.items():
            sweep = cwd / f"{tag}-{name}-{attempt}"
            start = time.perf_counter()
            dlrun(cwd, "-m", *launcher, seeds, *job, f"hydra.sweep.dir={sweep}")
            wall = time.perf_counter() - start
            assert completed(sweep) == JOBS, f"{name}: {completed(sweep)} of {JOBS} jobs completed"
            best[name] = min(best[name], wall)
            print(f"  {' '.join(job)}: {name:6s} launcher, {JOBS} jobs: {wall:.1f}s "
                  f"(load average now {os.getloadavg()[0]:.2f})")
    return best["basic"] / best["joblib"], best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--job", nargs="*", default=DEFAULT_JOB, help="overrides of every job")
    parser.add_argument("--longer-job", nargs="*", default=LONGER_JOB,
                        help="overrides of the longer jobs (information); none: skip them")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    print(C.machine_line())
    cwd = Path(C.temp_dir("bench-sweep-"))
    start = time.perf_counter()
    dlrun(cwd, *args.job, "hydra.run.dir=warmup")
    print(f"one job alone (with the digits import): {time.perf_counter() - start:.1f}s")

    results = []
    for tag, job in (("short", args.job), ("longer", args.longer_job)):
        if not job:
            continue
        speedup, best = sweep_speedup(cwd, job, args.repeats, tag)
        line = C.result(NAME, f"{JOBS} jobs ({' '.join(job)}), joblib n_jobs=2 vs basic:",
                        f"x{speedup:.2f} ({best['basic']:.1f}s vs {best['joblib']:.1f}s)", f">= x{TARGET}",
                        speedup >= TARGET)
        if tag == "longer":
            line = line.replace("-> PASS", "-> INFO").replace("-> MISS", "-> INFO")
        results.append(line)
    C.print_results(results)


if __name__ == "__main__":
    main()
