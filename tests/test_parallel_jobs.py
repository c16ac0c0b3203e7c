"""Many jobs, one store: four jobs of a joblib sweep import, train, evaluate and predict on one fresh
local platform at the same time, and every write of every job is there afterwards, intact."""

from __future__ import annotations

import hashlib
import sqlite3

from runner.platform.local import LocalPlatform
from tests.test_cli import dlrun, job_folders, ok, read_json, run_folders

DIGITS_ITEMS = 1797
JOBS = 4


def test_four_parallel_jobs_lose_no_write_and_corrupt_nothing(tmp_path):
    # small batches: many write transactions from every job, competing for SQLite's write lock
    ok(dlrun(tmp_path, "-m", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={JOBS}", "seed=0,1,2,3",
             "pipeline.steps=[train,evaluate,predict]", "pipeline.predict_subset=null", "batch_size=8"))

    [sweep] = run_folders(tmp_path, "multirun")
    jobs = job_folders(sweep)
    runs = [read_json(job / "run.json") for job in jobs]
    assert [r["status"] for r in runs] == ["completed"] * JOBS
    versions = [read_json(job / "model.json") for job in jobs]
    ids = {v["id"] for v in versions}
    assert len(ids) == len({v["name"] for v in versions}) == JOBS

    root = tmp_path / "dl"
    platform = LocalPlatform(root / "local")
    query = platform.store.query
    assert query("PRAGMA integrity_check")[0][0] == "ok"

    # one import of the dataset, though four jobs found it missing at once
    [(dataset_id,)] = query("SELECT id FROM datasets")
    assert query("SELECT COUNT(*) FROM items")[0][0] == DIGITS_ITEMS
    assert query("SELECT COUNT(*) FROM annotations WHERE model_name IS NULL")[0][0] == DIGITS_ITEMS

    # one base model, four versions cloned from it
    [(base_id,)] = query("SELECT id FROM models WHERE name = 'sklearn-digits'")
    clones = {row[0] for row in query("SELECT id FROM models WHERE cloned_from = ?", (base_id,))}
    assert clones == ids

    for version, job in zip(versions, jobs, strict=True):
        # every prediction of every version: one per item, none twice
        predicted = query("SELECT COUNT(*), COUNT(DISTINCT item_id) FROM annotations WHERE model_name = ?",
                          (version["name"],))[0]
        assert predicted == (DIGITS_ITEMS, DIGITS_ITEMS)
        # its artifacts, byte for byte what the blob names say
        artifacts = query("SELECT name, blob, size FROM artifacts WHERE model_id = ?", (version["id"],))
        assert sorted(name for name, _b, _s in artifacts) == version["artifacts"] != []
        for _name, blob, size in artifacts:
            data = platform.blobs.read(blob)
            assert len(data) == size and hashlib.sha256(data).hexdigest() == blob
        # its evaluation, as the job reported it
        evaluation = platform.latest_evaluation(platform.get_model(model_id=version["id"]))
        assert evaluation["accuracy"] == read_json(job / "metrics.json")["accuracy"]
        assert version["status"] == "trained"
        # its own model_data/ timestamp folder
        [stamp] = (root / "model_data" / f"{version['id']}_{version['name']}").iterdir()
        assert (stamp / "datasets" / dataset_id / "train" / "items").is_dir()

    # nothing left for a crash to recover: the write-ahead log is checkpointed cleanly
    with sqlite3.connect(root / "local" / "platform.db") as con:
        busy, _log, _done = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
