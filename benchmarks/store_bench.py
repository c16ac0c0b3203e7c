"""Store throughput of the local platform: item import, DQL subset filters, annotation writes.

    python benchmarks/store_bench.py            # 100k items, 50k annotations
    python benchmarks/store_bench.py --quick    # 10k items, 5k annotations

Prints figures and ratios against baselines measured side by side in this process; never asserts.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets DATALOOP_PATH to a temp folder before runner / dtlpy load)
import numpy as np  # noqa: E402

NAME = "store_bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10k items / 5k annotations instead of 100k / 50k")
    ap.add_argument("--items", type=int, default=None)
    ap.add_argument("--annotations", type=int, default=None)
    args = ap.parse_args()
    n_items = args.items or (10_000 if args.quick else 100_000)
    n_anns = args.annotations or (5_000 if args.quick else 50_000)
    n_naive = min(n_anns, 5_000)
    batch = 1000
    results: list[str] = []

    t0 = time.perf_counter()
    import dtlpy as dl

    from runner.platform.local import LocalPlatform
    from runner.platform.local.store import Store, new_id, now_iso

    print(f"# imports: {time.perf_counter() - t0:.2f}s; items={n_items} annotations={n_anns}; {C.machine_line()}")
    platform = LocalPlatform(C.temp_dir("bench-store-platform-"))
    store: Store = platform.store
    ds = platform.create_dataset("bench", labels=["cat", "dog", "bird"])

    # -- 1. import ----------------------------------------------------------------------------------
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    pngs = [C.tiny_png(i, rng) for i in range(n_items)]
    t_png = time.perf_counter() - t

    t_import = time.perf_counter()
    t = time.perf_counter()
    blobs = [platform.blobs.put_bytes(b) for b in pngs]
    t_blobs = time.perf_counter() - t
    t = time.perf_counter()
    rows = C.item_rows(platform, ds.id, blobs)
    t_rows = time.perf_counter() - t
    t = time.perf_counter()
    inserted = 0
    with store.write():  # one transaction; insert_items joins it per 10k chunk
        for k in range(0, len(rows), 10_000):
            inserted += store.insert_items(rows[k:k + 10_000])
    t_db = time.perf_counter() - t
    t_import = time.perf_counter() - t_import
    assert inserted == n_items == store.count_items(ds.id, None), (inserted, n_items)
    del pngs
    print(f"\n## import of {n_items} items (PNG encoding {t_png:.2f}s, not counted)")
    print(f"  blobs (put_bytes, one file each): {t_blobs:7.2f}s  {n_items / t_blobs:10.0f} items/s")
    print(f"  row dicts:                        {t_rows:7.2f}s")
    print(f"  insert_items (1 transaction):     {t_db:7.2f}s  {n_items / t_db:10.0f} items/s")
    print(f"  total:                            {t_import:7.2f}s  {n_items / t_import:10.0f} items/s")

    # -- 2. subset filters ---------------------------------------------------------------------------
    filters = {
        "dir=/test": (dl.Filters(field="dir", values="/test").prepare(),
                      lambda j: j["dir"] == "/test"),
        "metadata.user.tags=hard": (dl.Filters(field="metadata.user.tags", values="hard").prepare(),
                                    lambda j: "hard" in (j["metadata"].get("user") or {}).get("tags", [])),
    }

    def dql_select(query):
        n = store.count_items(ds.id, query)
        seen = 0
        for page in store.iter_items(ds.id, query):
            seen += len(page)
        assert seen == n, (seen, n)
        return n

    def python_select(predicate):
        # baseline: every row's JSON with one SELECT, the same item_json as the store, filter in Python
        rows_ = store.query("SELECT rid, id, dataset_id, filename, dir, name, type, hidden, mimetype, blob, size, "
                            "created_at, metadata FROM items WHERE dataset_id = ?", (ds.id,))
        out = [j for j in map(store.item_json, rows_) if not j["hidden"] and j["type"] == "file" and predicate(j)]
        return len(out)

    def plans(query):
        """The page query iter_items sends (traced) and SQLite's plan for it; the number of page queries."""
        con = store.connection()
        sent: list[str] = []
        con.set_trace_callback(sent.append)
        try:
            for _page in store.iter_items(ds.id, query):
                pass
        finally:
            con.set_trace_callback(None)
        selects = [q for q in sent if q.lstrip().upper().startswith("SELECT")]
        plan = [r[3] for r in con.execute("EXPLAIN QUERY PLAN " + selects[0]).fetchall()] if selects else []
        return plan, len(selects)

    print("\n## subset filters: count_items + every page of iter_items (page 500), best of 5")
    for label, (query, predicate) in filters.items():
        t_dql, n_dql = C.best_of(5, lambda q=query: dql_select(q))
        t_py, n_py = C.best_of(3, lambda p=predicate: python_select(p))
        assert n_dql == n_py, (label, n_dql, n_py)
        t_count, _ = C.best_of(5, lambda q=query: store.count_items(ds.id, q))
        print(f"  {label:26s} {n_dql:6d} items  DQL {t_dql:6.3f}s (count alone {t_count * 1000:5.1f} ms)  "
              f"python baseline {t_py:6.3f}s  speed-up x{t_py / t_dql:5.1f}")
        plan, n_pages = plans(query)
        print(f"  {'':26s} iter_items sent {n_pages} page queries; plan: {' | '.join(plan)}")
        results.append(C.result(NAME, f"filter {label} ({n_dql} of {n_items} items)", f"{t_dql:.3f}s, "
                                f"x{t_py / t_dql:.1f} vs python", "<= 0.2s", t_dql <= 0.2))

    # -- 3. annotation writes ------------------------------------------------------------------------
    item_ids = [r["id"] for r in rows[:n_anns]]
    coll = dl.AnnotationCollection()
    coll.add(annotation_definition=dl.Classification(label="cat"), model_info={"name": "bench-model", "confidence": 0.9})
    coll.add(annotation_definition=dl.Box(top=1, left=2, bottom=30, right=40, label="dog"),
             model_info={"name": "bench-model", "confidence": 0.7})
    templates = [a.to_json() for a in coll]
    for tpl in templates:
        tpl.pop("item", None)
        tpl.pop("dataset", None)
        tpl["metadata"].setdefault("system", {})["model"] = {"model_id": "m1", "name": "bench-model",
                                                             "confidence": 0.8}

    def make_annotations(ids):
        out = []
        for k, iid in enumerate(ids):
            a = copy.deepcopy(templates[k % 2])
            a.update(id=new_id(), itemId=iid, datasetId=ds.id, createdAt=now_iso())
            out.append(a)
        return out

    anns_insert = make_annotations(item_ids)
    anns_replace = make_annotations(item_ids)
    anns_rerun = make_annotations(item_ids)
    anns_naive = make_annotations(item_ids[:n_naive])
    print(f"\n## annotation writes ({n_anns} class/box annotation dicts, batches of {batch}, one transaction "
          f"per batch); naive baseline over {n_naive}")

    t = time.perf_counter()
    for k in range(0, n_anns, batch):
        store.insert_annotations(anns_insert[k:k + batch])
    t_insert = time.perf_counter() - t

    def replace_all(anns):
        for k in range(0, n_anns, batch):
            chunk = anns[k:k + batch]
            store.replace_model_annotations("bench-model", [a["itemId"] for a in chunk], chunk)

    # replace_model_annotations deletes the model's earlier annotations on the items: clear them first so
    # the first pass is a pure write, the rerun pass a delete + write
    with store.write() as con:
        con.execute("DELETE FROM annotations WHERE model_name = 'bench-model'")
    t = time.perf_counter()
    replace_all(anns_replace)
    t_replace = time.perf_counter() - t
    t = time.perf_counter()
    replace_all(anns_rerun)
    t_rerun = time.perf_counter() - t
    assert store.count_annotations(ds.id, "bench-model") == n_anns

    t = time.perf_counter()
    for a in anns_naive:
        store.insert_annotations([a])  # one transaction per annotation
    t_naive = time.perf_counter() - t

    naive_rate = n_naive / t_naive
    for label, seconds in (("insert_annotations", t_insert), ("replace_model_annotations", t_replace),
                           ("replace_model_annotations rerun", t_rerun)):
        rate = n_anns / seconds
        print(f"  {label:32s} {seconds:6.2f}s  {rate:9.0f} annotations/s  x{rate / naive_rate:5.1f} vs naive")
        if "rerun" not in label:
            results.append(C.result(NAME, f"{label} (batches of {batch})", f"{rate:.0f} ann/s, "
                                    f"x{rate / naive_rate:.1f} vs naive", ">= 20000 ann/s", rate >= 20_000))
    print(f"  {'naive (1 transaction each)':32s} {t_naive:6.2f}s  {naive_rate:9.0f} annotations/s")
    results.append(C.result(NAME, f"item import ({n_items} items: blobs + rows)", f"{n_items / t_import:.0f} items/s",
                            "info only", True).replace("-> PASS", "-> INFO"))
    C.print_results(results)
    store.close()


if __name__ == "__main__":
    main()
