"""Shared helpers of the benchmark scripts (stdlib + numpy + pillow + the project only).

Import this module *before* ``runner`` / ``dtlpy``: it points ``DATALOOP_PATH`` at a fresh temp folder
so no benchmark touches the user's own ``~/.dataloop``. Every script removes its temp folders at exit.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import sys
import tempfile
import time

_TEMP_DIRS: list[str] = []


def temp_dir(prefix: str) -> str:
    path = tempfile.mkdtemp(prefix=prefix)
    _TEMP_DIRS.append(path)
    return path


@atexit.register
def _cleanup() -> None:
    for path in _TEMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)


# a worker process the script spawns imports this module again: it keeps its parent's folder (which the
# parent removes) instead of making one that nothing would remove
if "BENCH_DATALOOP_PATH" not in os.environ:
    os.environ["BENCH_DATALOOP_PATH"] = temp_dir("bench-dataloop-")
os.environ["DATALOOP_PATH"] = os.environ["BENCH_DATALOOP_PATH"]

# the project root on sys.path, for a checkout that is not installed
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import runner  # noqa: E402,F401  (before dtlpy: claims its logger, see runner/dtlpy_logger.py)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def tiny_png(i: int, rng: np.random.Generator) -> bytes:
    """A 4x4 RGB PNG, distinct per ``i`` (the index is written into the first pixels)."""
    a = np.zeros((4, 4, 3), np.uint8)
    a.flat[:4] = np.frombuffer(int(i).to_bytes(4, "little"), np.uint8)
    a.flat[4:10] = rng.integers(0, 256, 6, dtype=np.uint8)
    return png_bytes(a)


SPLITS = ("train", "validation", "test")  # by i % 10: 0-6 train, 7 validation, 8-9 test


def split_of(i: int) -> str:
    r = i % 10
    return "train" if r < 7 else ("validation" if r == 7 else "test")


def item_rows(platform, dataset_id: str, blobs: list[str], start: int = 0, mimetype: str = "image/png",
              width: int = 4, height: int = 4) -> list[dict]:
    """Rows for ``Store.insert_items``: dirs split train/validation/test, a few metadata tags."""
    from runner.platform.local.store import new_id

    rows = []
    for k, sha in enumerate(blobs):
        i = start + k
        split = split_of(i)
        tags = ["hard"] if i % 20 == 3 else (["easy", "night"] if i % 20 == 5 else ["easy"])
        rows.append({"id": new_id(), "dataset_id": dataset_id, "filename": f"/{split}/{i:06d}.png", "dir": f"/{split}",
                     "name": f"{i:06d}.png", "mimetype": mimetype, "blob": sha,
                     "metadata": {"system": {"mimetype": mimetype, "width": width, "height": height},
                                  "user": {"tags": tags, "batch": i // 1000}}})
    return rows


def best_of(n: int, fn) -> tuple[float, object]:
    """Best wall time of ``n`` calls of ``fn`` and the last return value."""
    best, out = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


class CpuMeter:
    """Wall time, the CPU time of this process and of its live worker processes (multiprocessing's
    children, e.g. prepare processes), and the CPU time used by *other* processes (from /proc/stat)
    over a block. The machine is shared: a figure taken while another job keeps a core busy says so."""

    def __enter__(self):
        self._start = (self._busy(), self._own_cpu(), time.perf_counter(), os.times().system)
        return self

    def __exit__(self, *exc):
        busy, cpu, wall, system = self._busy(), self._own_cpu(), time.perf_counter(), os.times().system
        self.wall = wall - self._start[2]
        self.cpu = cpu - self._start[1]
        self.system = system - self._start[3]  # the kernel's share of self.cpu (thread wake-ups, page faults)
        self.foreign_cores = None if busy is None or self._start[0] is None else \
            max(0.0, (busy - self._start[0]) - self.cpu) / max(self.wall, 1e-9)
        return False

    @staticmethod
    def _own_cpu() -> float:
        import multiprocessing

        total = time.process_time()
        for child in multiprocessing.active_children():
            try:
                with open(f"/proc/{child.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        return total

    @staticmethod
    def _busy() -> float | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait

    def describe(self) -> str:
        other = "n/a" if self.foreign_cores is None else f"{self.foreign_cores:.2f}"
        return (f"wall {self.wall:.2f}s, this process cpu {self.cpu:.2f}s (kernel {self.system:.2f}s), "
                f"other processes {other} cores")


def parallel_capacity(seconds: float = 0.3) -> float:
    """Speed-up of two threads over one on GIL-free work (sha256 of 1 MiB buffers) right now: close to
    2 on an idle two-core machine, close to 1 when another process keeps a core busy."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    data = os.urandom(1 << 20)
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < seconds / 2:
        hashlib.sha256(data).digest()
        n += 1

    def work(_):
        for _ in range(n):
            hashlib.sha256(data).digest()

    t = time.perf_counter()
    work(0)
    one = time.perf_counter() - t
    with ThreadPoolExecutor(2) as pool:
        t = time.perf_counter()
        list(pool.map(work, range(2)))
        two = time.perf_counter() - t
    return 2 * one / two


def machine_line() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return (f"cpu_count={os.cpu_count()}, load average {load[0]:.2f}, two-thread GIL-free speed-up now "
            f"x{parallel_capacity():.2f}")


def result(name: str, what: str, figure: str, target: str, ok: bool) -> str:
    line = f"RESULT {name}: {what} {figure} (target {target}) -> {'PASS' if ok else 'MISS'}"
    return line


def print_results(lines: list[str]) -> None:
    print()
    print("=" * 100)
    for line in lines:
        print(line)
    print("=" * 100)
    sys.stdout.flush()
