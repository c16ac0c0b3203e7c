"""Peak memory of ``adapter.predict_dataset(dataset)``: 20k items against 2k items. A streamed
pipeline holds a bounded number of pages and batches, so the two peaks should be nearly the same.

    python benchmarks/predict_memory_bench.py            # 20k vs 2k items
    python benchmarks/predict_memory_bench.py --quick    # 5k vs 500 items

The parent process builds one local platform with the two datasets (tiny 4x4 PNGs), then runs each
measurement in a fresh subprocess of this script (``--child``): ru_maxrss is a high-water mark for the
life of a process, so only a fresh process gives a per-run figure, and a fresh process keeps the first
run's one-off allocations (lazy imports, thread pools, per-thread SQLite connections, dtlpy caches) out
of the second run's figure. In the child, a warm-up prediction over 32 items and a gc.collect() run
before tracing starts; the figure is the tracemalloc peak (1 frame per trace) above the traced baseline
taken just before ``predict_dataset``. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets DATALOOP_PATH to a temp folder before runner / dtlpy load)
import numpy as np  # noqa: E402

NAME = "predict_memory_bench"
MODEL = "bench-memory"
BATCH_SIZE = 16


def build_adapter_class():
    import dtlpy as dl

    from runner import BaseModelAdapter

    class TrivialAdapter(BaseModelAdapter):
        """Default prepare (decodes the PNG); predict returns one classification per item."""

        def load(self, local_path, **kwargs):
            pass

        def save(self, local_path, **kwargs):
            pass

        def predict(self, batch, **kwargs):
            out = []
            for x in batch:
                collection = dl.AnnotationCollection()
                collection.add(annotation_definition=dl.Classification(label="a" if int(x.sum()) % 2 else "b"),
                               model_info={"name": self.model_entity.name, "confidence": 0.5})
                out.append(collection)
            return out

    return TrivialAdapter


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(root: str, dataset_name: str, top: int, freeze: bool = False) -> None:
    from runner.platform.local import LocalPlatform

    platform = LocalPlatform(root)
    dataset = platform.get_dataset(name=dataset_name)
    model = platform.get_model(name=MODEL)
    adapter = build_adapter_class()()
    adapter.model_entity = model
    # warm-up: lazy imports, thread pools, per-thread connections; its annotations are replaced below
    adapter.predict_items([i for i in next(platform.iter_items(dataset, None, 32))])
    gc.collect()
    if freeze:
        # diagnosis only, a fix the runner could make: freeze what is alive now (so a full collection scans
        # only new objects) and collect after every page of items
        gc.freeze()
        pages = platform.iter_items

        def iter_items_collecting(*args, **kwargs):
            for page in pages(*args, **kwargs):
                yield page
                gc.collect()

        platform.iter_items = iter_items_collecting
    rss_before = maxrss_mb()
    collections = [0, 0, 0]

    def count_collections(phase, info):
        if phase == "start":
            collections[info["generation"]] += 1

    gc.callbacks.append(count_collections)
    tracemalloc.start(1)
    base_current, _ = tracemalloc.get_traced_memory()
    before = tracemalloc.take_snapshot() if top else None
    tracemalloc.reset_peak()
    t = time.perf_counter()
    n = adapter.predict_dataset(dataset)
    seconds = time.perf_counter() - t
    current, peak = tracemalloc.get_traced_memory()
    gc.callbacks.remove(count_collections)
    growth = []
    if top:
        after = tracemalloc.take_snapshot()
        for stat in after.compare_to(before, "lineno")[:top]:
            frame = stat.traceback[0]
            growth.append(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  "
                          f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}")
    gc.collect()
    after_gc, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    adapter.batch_runner.close()
    stored = platform.store.count_annotations(dataset.id, MODEL)
    print(json.dumps({"dataset": dataset_name, "items": n, "stored": stored, "seconds": seconds,
                      "peak_mb": (peak - base_current) / 2**20, "retained_mb": (current - base_current) / 2**20,
                      "after_gc_mb": (after_gc - base_current) / 2**20, "gc_runs": collections,
                      "rss_before_mb": rss_before, "rss_after_mb": maxrss_mb(), "growth": growth}))


def build(root: str, sizes: dict[str, int]) -> None:
    from runner.platform.local import LocalPlatform

    platform = LocalPlatform(root)
    rng = np.random.default_rng(0)
    first = None
    for name, n in sizes.items():
        dataset = platform.create_dataset(name, labels=["a", "b"])
        first = first or dataset
        blobs = [platform.blobs.put_bytes(C.tiny_png(i, rng)) for i in range(n)]
        with platform.store.write():
            platform.store.insert_items(C.item_rows(platform, dataset.id, blobs))
    platform.create_model(MODEL, first, configuration={"batch_size": BATCH_SIZE, "prepare_workers": 4})
    platform.store.close()


def run_child(root: str, dataset_name: str, top: int, freeze: bool = False) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--root", root, "--dataset", dataset_name,
           "--top", str(top)] + (["--freeze"] if freeze else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child for {dataset_name} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5k vs 500 items instead of 20k vs 2k")
    ap.add_argument("--top", type=int, default=8, help="allocation sites that grew most, per run (0: none)")
    ap.add_argument("--with-gc-fix", action="store_true",
                    help="diagnosis: also run both sizes with gc.freeze() before predict_dataset and gc.collect() "
                         "after each page of items (info only)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--freeze", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.root, args.dataset, args.top, args.freeze)
        return

    small, large = (500, 5_000) if args.quick else (2_000, 20_000)
    root = C.temp_dir("bench-memory-platform-")
    t = time.perf_counter()
    build(root, {"small": small, "large": large})
    print(f"# platform with datasets small={small} and large={large} tiny PNGs built in "
          f"{time.perf_counter() - t:.1f}s; batch {BATCH_SIZE}; each run in a fresh subprocess")
    runs = {}
    for name in ("small", "large"):
        r = run_child(root, name, args.top)
        runs[name] = r
        assert r["items"] == r["stored"] == (small if name == "small" else large), r
        print(f"\n## predict_dataset over {r['items']} items: {r['seconds']:.1f}s under tracemalloc")
        print(f"  tracemalloc peak above baseline {r['peak_mb']:8.2f} MiB   held at the end {r['retained_mb']:6.2f} MiB"
              f"   held after gc.collect() {r['after_gc_mb']:6.2f} MiB")
        print(f"  garbage collections during the run by generation (0, 1, 2): {tuple(r['gc_runs'])}")
        print(f"  ru_maxrss {r['rss_before_mb']:.0f} MiB after warm-up -> {r['rss_after_mb']:.0f} MiB "
              f"(delta {r['rss_after_mb'] - r['rss_before_mb']:+.1f} MiB; includes tracemalloc's own bookkeeping)")
        if r["growth"]:
            print("  allocation sites that grew most over the run (held at its end, before gc.collect()):")
            for line in r["growth"]:
                print("    " + line)
    ratio = runs["large"]["peak_mb"] / runs["small"]["peak_mb"]
    rss_ratio = ((runs["large"]["rss_after_mb"] - runs["large"]["rss_before_mb"]) /
                 max(runs["small"]["rss_after_mb"] - runs["small"]["rss_before_mb"], 0.1))
    print(f"\n  peak {large} / peak {small} = {ratio:.2f}   (ru_maxrss delta ratio {rss_ratio:.2f}, info)")
    results = [C.result(NAME, f"tracemalloc peak {large} items / {small} items",
                        f"{ratio:.2f} ({runs['large']['peak_mb']:.1f} MiB vs {runs['small']['peak_mb']:.1f} MiB)",
                        "<= 1.5", ratio <= 1.5)]
    if args.with_gc_fix:
        frozen = {name: run_child(root, name, 0, freeze=True) for name in ("small", "large")}
        f_ratio = frozen["large"]["peak_mb"] / frozen["small"]["peak_mb"]
        print("\n## diagnosis: the same two runs with gc.freeze() before predict_dataset, gc.collect() after each page")
        for r in frozen.values():
            print(f"  {r['items']:6d} items: peak {r['peak_mb']:6.2f} MiB, held after gc.collect() "
                  f"{r['after_gc_mb']:5.2f} MiB, collections {tuple(r['gc_runs'])}")
        print(f"  peak ratio with the collections {f_ratio:.2f}")
        results.append(C.result(NAME, "diagnosis: the ratio with gc.freeze() + gc.collect() per page",
                                f"{f_ratio:.2f} ({frozen['large']['peak_mb']:.1f} MiB vs {frozen['small']['peak_mb']:.1f} MiB)",
                                "info only", True).replace("-> PASS", "-> INFO"))
    C.print_results(results)


if __name__ == "__main__":
    main()
