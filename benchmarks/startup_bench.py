"""Start-up overhead of the CLI next to its floor: importing hydra + dtlpy + scikit-learn alone.

Prints wall times (best of N, each in a fresh interpreter) and ratios against the floor:
  floor        python -c "import hydra, dtlpy, sklearn"
  --cfg job    python -m runner --cfg job            (compose and print; the runner imports nothing heavy)
  default run  python -m runner                      (import check, train, evaluate, report; digits already imported)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def best_of(n: int, command: list[str], env: dict, cwd: str) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        best = min(best, elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "DATALOOP_PATH": os.path.join(work, "dataloop")}
        python = sys.executable
        floor = best_of(repeats, [python, "-c", "import hydra, dtlpy, sklearn"], env, work)
        cfg_job = best_of(repeats, [python, "-m", "runner", "--cfg", "job"], env, work)
        subprocess.run([python, "-m", "runner"], env=env, cwd=work, capture_output=True, check=True)  # imports digits
        run = best_of(max(2, repeats // 2), [python, "-m", "runner"], env, work)
    print(f"floor: import hydra + dtlpy + sklearn   {floor:6.2f} s")
    print(f"python -m runner --cfg job              {cfg_job:6.2f} s   x{cfg_job / floor:4.2f} of the floor")
    print(f"python -m runner (default run)          {run:6.2f} s   x{run / floor:4.2f} of the floor, "
          f"{run - floor:5.2f} s above it")
    print(f"RESULT startup: --cfg job {cfg_job:.2f} s vs floor {floor:.2f} s "
          f"-> {'PASS' if cfg_job <= floor else 'MISS'} (target: no slower than the floor)")


if __name__ == "__main__":
    main()
