"""Sharded ``predict_dataset`` on 2 worker processes against the same call in one process.

    python benchmarks/sharded_predict_bench.py            # 20,000 items
    python benchmarks/sharded_predict_bench.py --quick    # 6,000 items

The dataset is scikit-learn's digits (1,797 real 8x8 PNGs) listed again and again under new names
until it holds N items (the bytes are shared: the store is content-addressed). The model is the
shipped scikit-learn adapter trained on the digits' train subset. Both ways run the same wrapper
function over every item — prepare (decode + resize), predict, stamp and store the annotations,
replacing the model's earlier ones — and the stored results are compared. The 2-worker time
includes starting the worker processes and loading the model in each. The single process runs
with the runner's default prepare threads (one per core) and with one (the model's thread keeps a
core to itself); the faster is the baseline. Best of ``--repeats`` runs each, alternating. Figures
only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets DATALOOP_PATH to a temp folder before runner / dtlpy load)

NAME = "sharded_predict_bench"
TARGET = 1.7


ADAPTERS = {
    # logistic regression over 8x8 pixels: a light model, the pipeline's own work dominates
    "sklearn": ("adapters.sklearn_classifier.SklearnImageClassifier", {"batch_size": 32}),
    # the CNN at 64x64 (two conv blocks of 32 and 64 channels) on one torch thread: the model
    # dominates, as it does with any real network
    "torch": ("adapters.torch_classifier.TorchImageClassifier",
              {"batch_size": 32, "epochs": 1, "input_size": 64, "conv_channels": [32, 64], "hidden_size": 128,
               "num_threads": 1}),
}


def build(n_items: int, adapter_name: str):
    import dtlpy as dl
    from hydra.utils import get_class

    from runner.data import import_digits
    from runner.platform.local import LocalPlatform
    from runner.platform.local.store import new_id

    platform = LocalPlatform(C.temp_dir("bench-sharded-"))
    dataset = import_digits(platform).dataset
    originals = [item for page in platform.iter_items(dataset, None) for item in page]
    blobs = {row[0]: row[1] for row in platform.store.query("SELECT id, blob FROM items")}
    rows, i = [], 0
    while len(originals) + len(rows) < n_items:
        item = originals[i % len(originals)]
        rows.append({"id": new_id(), "dataset_id": dataset.id, "filename": f"/copies/{i:06d}-{item.name}",
                     "dir": "/copies", "name": f"{i:06d}-{item.name}", "mimetype": item.mimetype,
                     "blob": blobs[item.id], "size": item.metadata["system"].get("size"),
                     "metadata": {"system": dict(item.metadata["system"])}})
        i += 1
    platform.store.insert_items(rows)
    subsets = {name: dl.Filters(field="dir", values=f"/{name}").prepare() for name in ("train", "validation", "test")}
    target, configuration = ADAPTERS[adapter_name]
    model = platform.create_model("bench-digits", dataset, configuration=configuration, subsets=subsets)
    adapter = get_class(target)()
    adapter.platform = platform
    adapter.train_model(model)
    adapter.load_from_model(model_entity=platform.get_model(model.id))
    return platform, dataset, adapter


def _model_loop(seconds: float) -> float:
    """Batches per second of the benchmark's CNN forward pass alone, on one torch thread."""
    import time

    import torch

    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(64 * 16 * 16, 128)).eval()
    x = torch.randn(32, 1, 64, 64)
    n, start = 0, time.perf_counter()
    with torch.inference_mode():
        while time.perf_counter() - start < seconds:
            net(x)
            n += 1
    return n / (time.perf_counter() - start)


def two_process_capacity(seconds: float = 4.0) -> float:
    """How much two processes of pure model work get done at once against one alone: what the
    machine allows any two workers (close to 2 on two idle physical cores)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_model_loop, 0.5).result()  # start-up and imports out of the way
        alone = pool.submit(_model_loop, seconds).result()
        together = sum(f.result() for f in [pool.submit(_model_loop, seconds) for _ in range(2)])
    return together / alone


def stored(platform, adapter) -> list[tuple]:
    rows = platform.store.query("SELECT item_id, label, json FROM annotations WHERE model_name = ? ORDER BY item_id",
                                (adapter.model_entity.name,))
    return [(item_id, label) for item_id, label, _json in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="6,000 items")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--adapter", choices=sorted(ADAPTERS), default="torch")
    args = parser.parse_args()
    n_items = 6000 if args.quick else args.items

    print(C.machine_line())
    if args.adapter == "torch":
        import torch

        torch.set_num_threads(1)  # prediction on one thread per process, as training: one core per worker
    platform, dataset, adapter = build(n_items, args.adapter)
    print(f"{n_items} items, adapter {args.adapter} ({ADAPTERS[args.adapter][0]})")

    # the single process at its best: the runner's default prepare threads (one per core) and one thread
    # (the model's thread keeping a core to itself) are both measured, and the faster one is the baseline
    cores = os.cpu_count() or 1
    ways = [(1, cores), (1, 1), (2, None)] if cores > 1 else [(1, 1), (2, None)]
    best = {way: float("inf") for way in ways}
    results = {}
    for attempt in range(args.repeats):
        for way in ways:
            workers, threads = way
            if threads is not None:
                adapter.configuration["prepare_workers"] = threads
                adapter.batch_runner.close()
                adapter._batch_runner = None
            with C.CpuMeter() as meter:
                count = adapter.predict_dataset(dataset, workers=workers)
            assert count == n_items, count
            results[workers] = stored(platform, adapter)
            best[way] = min(best[way], meter.wall)
            what = f"{workers} workers" if threads is None else f"1 worker, {threads} prepare thread{'s' * (threads > 1)}"
            print(f"  run {attempt + 1}, {what}: {meter.describe()}")
    same = results[1] == results[2] and len(results[1]) == n_items
    print(f"stored results identical between 1 and 2 workers: {same} ({len(results[2])} annotations)")
    if args.adapter == "torch":
        print(f"two processes of the CNN forward pass alone do x{two_process_capacity():.2f} the work of one "
              "(what this machine allows two workers)")
    single = min(best[way] for way in ways if way[0] == 1)
    speedup = single / best[(2, None)]
    C.print_results([C.result(NAME, f"predict_dataset over {n_items} items, 2 workers vs 1:",
                              f"x{speedup:.2f} ({single:.2f}s vs {best[(2, None)]:.2f}s)", f">= x{TARGET}",
                              speedup >= TARGET and same)])


if __name__ == "__main__":
    main()
