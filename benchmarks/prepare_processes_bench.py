"""``prepare_in: processes`` against ``prepare_in: threads`` for a ``prepare_item_func`` that runs Python code.

    python benchmarks/prepare_processes_bench.py            # the 1,797 digits, 4 rounds over them
    python benchmarks/prepare_processes_bench.py --quick    # one round

The items are scikit-learn's digits (real 8x8 PNGs) listed ``--rounds`` times. ``prepare_item_func``
decodes an item with the runner's default and then builds a 16-bin histogram of its pixels by hand in
a Python loop (``PASSES`` times over the 64 pixels, about 0.8 ms per item): the kind of prepare
(tokenizing, walking boxes or polygons, many small numpy calls) that holds the interpreter lock.
``predict`` is trivial (one classification per item), so the pipeline's time is prepare's.

Measured side by side in this process, for ``prepare_workers`` 1 (cores - 1: the model's thread keeps a
core) and 2 (every core): ``predict_items`` over every item on threads and on processes (each warmed up
first: the worker processes are started before the timed runs), and every item prepared serially on
this thread. The limit is max(prepare / workers, predict), as in predict_pipeline_bench.py. Best of
``--repeats`` runs each. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets DATALOOP_PATH to a temp folder before runner / dtlpy load)
import dtlpy as dl  # noqa: E402
import numpy as np  # noqa: E402

from runner import BaseModelAdapter  # noqa: E402

NAME = "prepare_processes_bench"
PASSES = 120
BATCH_SIZE = 16


class PythonPrepare(BaseModelAdapter):
    """prepare: decode, then a hand-written histogram (Python-bound); predict: one label per item."""

    def load(self, local_path, **kwargs):
        pass

    def prepare_item_func(self, item):
        pixels = super().prepare_item_func(item).ravel().tolist()
        counts = [0] * 16
        for _ in range(PASSES):
            for value in pixels:
                counts[value >> 4] += 1
        return np.asarray(counts)

    def predict(self, batch, **kwargs):
        out = []
        for counts in batch:
            collection = dl.AnnotationCollection()
            collection.add(annotation_definition=dl.Classification(label=str(int(np.argmax(counts)) % 10)),
                           model_info={"name": self.model_entity.name, "confidence": 0.5})
            out.append(collection)
        return out


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the digits once instead of --rounds times")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cores = os.cpu_count() or 1

    from runner.data import import_digits
    from runner.platform.local import LocalPlatform

    print(f"# {C.machine_line()}")
    platform = LocalPlatform(C.temp_dir("bench-prepare-processes-"))
    dataset = import_digits(platform).dataset
    items = [item for page in platform.iter_items(dataset, None) for item in page] * (1 if args.quick else args.rounds)
    n = len(items)
    results = []
    for workers in sorted({max(1, cores - 1), cores}):
        walls = {}
        for prepare_in in ("threads", "processes"):
            model = platform.create_model(f"bench-{prepare_in}-{workers}", dataset, labels=[str(d) for d in range(10)],
                                          configuration={"batch_size": BATCH_SIZE, "prepare_workers": workers,
                                                         "prepare_in": prepare_in})
            adapter = PythonPrepare()
            adapter.platform = platform
            adapter.load_from_model(model_entity=model)
            t = time.perf_counter()
            adapter.predict_items(items[:64])  # the pools (and worker processes) start here
            start = time.perf_counter() - t
            walls[prepare_in] = timed(lambda adapter=adapter: adapter.predict_items(items), args.repeats)
            adapter.batch_runner.close()
            print(f"  {prepare_in:9s} prepare_workers {workers}: {walls[prepare_in]:6.2f}s  {n / walls[prepare_in]:6.0f} "
                  f"items/s   (first call of 64 items, starting the pool: {start:.2f}s)")
        sample = PythonPrepare()
        sample.model_entity = model
        prepare = timed(lambda sample=sample: [sample.prepare_item_func(item) for item in items], args.repeats)
        predict = timed(lambda sample=sample: sample.predict([np.zeros(16, int)] * BATCH_SIZE), args.repeats) * -(-n // BATCH_SIZE)
        limit = max(prepare / workers, predict)
        print(f"## prepare_workers {workers} on {cores} cores, {n} items: prepare serially {prepare:.2f}s "
              f"({prepare / n * 1e3:.2f} ms/item), predict {predict:.2f}s, limit {limit:.2f}s")
        for prepare_in in ("threads", "processes"):
            results.append(C.result(NAME, f"[prepare_workers {workers}, {prepare_in}] limit/ours",
                                    f"{limit / walls[prepare_in]:.2f} (ours {walls[prepare_in]:.2f}s)", ">= 0.85",
                                    limit / walls[prepare_in] >= 0.85))
        results.append(C.result(NAME, f"[prepare_workers {workers}] processes vs threads",
                                f"x{walls['threads'] / walls['processes']:.2f}", "info only", True)
                       .replace("-> PASS", "-> INFO"))
    C.print_results(results)


if __name__ == "__main__":
    main()
