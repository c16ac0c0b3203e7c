"""``python -m runner.store``: what the local platform holds, and deletes that take a record with
what is its own (and the file bytes no other record uses), and nothing else."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adapters.sklearn_classifier import SklearnImageClassifier
from runner.data import import_digits, import_image_folder
from runner.errors import ArtifactError, NotFoundError, PredictionError, RunnerError
from runner.paths import model_data_folder, model_folder
from runner.platform.local import LocalPlatform
from runner.store import main
from tests.digits_subsets import SUBSETS
from tests.run_folders import trained_in
from tests.store_commands import Terminal, as_process, listed, store


@pytest.fixture
def platform(home_platform):
    return home_platform  # with the copies a run makes beside it, which its deletes and checks take


@pytest.fixture
def versions(platform, digits):
    """A base model and two trained, evaluated versions of it (predictions stored on the test subset)."""
    base = platform.create_model("digits-lr", digits, configuration={"batch_size": 64}, subsets=SUBSETS)
    out = []
    for name, c in (("digits-lr-v1", 1.0), ("digits-lr-v2", 0.05)):
        version = platform.clone_model(base, name, configuration={
            "estimator": {"_target_": "sklearn.linear_model.LogisticRegression", "C": c, "max_iter": 300}})
        adapter = SklearnImageClassifier(model_entity=version)
        adapter.train_model(version)
        adapter.evaluate_model(version, digits, filters=SUBSETS["test"])
        out.append(platform.get_model(version.id))
    return base, *out


def blobs_on_disk(platform) -> set[str]:
    """The blobs readers can find: ``blobs/<sha[:2]>/<sha>`` (a delete's trash folder is not one)."""
    return {p.name for p in (platform.root / "blobs").glob("[0-9a-f][0-9a-f]/*")}


def artifact_blobs(platform, model) -> set[str]:
    return {blob for _name, blob, _size in platform.store.list_artifacts(model.id)}


def test_lists_datasets_and_models_with_their_latest_metrics(platform, digits, versions, capsys):
    base, v1, v2 = versions
    n_test = platform.count_items(digits, SUBSETS["test"])
    [row] = listed(platform, capsys, "datasets")
    assert (row["name"], row["items"], row["annotations"], row["predictions"], row["models"]) == \
        ("digits", 1797, 1797, 2 * n_test, 3)
    assert row["source"] == {"_target_": "runner.data.import_digits", "dataset_name": "digits"}  # from Python, as a run

    rows = {r["name"]: r for r in listed(platform, capsys, "models")}
    assert list(rows) == ["digits-lr", "digits-lr-v1", "digits-lr-v2"]  # oldest first
    assert rows["digits-lr-v1"]["cloned_from"] == "digits-lr" and rows["digits-lr"]["cloned_from"] is None
    assert rows["digits-lr-v2"]["status"] == "trained" and rows["digits-lr-v2"]["dataset"] == "digits"
    assert rows["digits-lr-v1"]["metrics"]["accuracy"] == platform.latest_evaluation(v1)["accuracy"]
    assert rows["digits-lr"]["metrics"] == {}
    assert [r["name"] for r in listed(platform, capsys, "models", "--status", "created")] == ["digits-lr"]

    code, out, _ = store(platform, capsys, "models")
    assert code == 0 and f"accuracy={platform.latest_evaluation(v2)['accuracy']:.4f}" in out
    code, _, err = store(platform, capsys, "models", "--dataset", "digitz")
    assert code == 2 and "no dataset named 'digitz'" in err and "digits" in err
    assert main(["--root", str(platform.root / "typo"), "datasets"]) == 2
    assert "no local platform at" in capsys.readouterr().err and not (platform.root / "typo").exists()
    assert main(["--root", str(platform.root), "--project", "lcoal", "models"]) == 2
    assert "no project 'lcoal'" in capsys.readouterr().err
    assert main(["--root", "", "models"]) == 2 and "--root is empty" in capsys.readouterr().err
    (platform.root.parent / "broken").mkdir()
    (platform.root.parent / "broken" / "platform.db").write_text("not a database")
    assert main(["--root", str(platform.root.parent / "broken"), "models"]) == 2
    assert "cannot be opened" in capsys.readouterr().err
    assert main(["models", "--root", str(platform.root), "--json"]) == 0  # --root after the command too
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert [row[0] for row in platform.store.query("SELECT name FROM projects")] == ["local"]


def test_models_sorted_by_a_metric_with_where_each_was_evaluated(platform, digits, versions, capsys):
    base, v1, v2 = versions
    n_test = platform.count_items(digits, SUBSETS["test"])
    accuracy = {v.name: platform.latest_evaluation(v)["accuracy"] for v in (v1, v2)}
    rows = listed(platform, capsys, "models", "--sort", "accuracy")
    assert [r["name"] for r in rows] == [*sorted(accuracy, key=accuracy.get, reverse=True), "digits-lr"]
    assert rows[0]["evaluated_on"] == {"dataset": "digits", "subset": "test", "items": n_test, "with": None}
    assert rows[-1]["evaluated_on"] is None
    # evaluated again elsewhere (the validation subset): the listing says where its latest score comes from
    adapter = SklearnImageClassifier(model_entity=v1)
    adapter.evaluate_model(v1, digits, filters=SUBSETS["validation"])
    code, out, _ = store(platform, capsys, "models", "--sort", "f1_macro")
    line = next(line for line in out.splitlines() if line.startswith("digits-lr-v1 "))
    assert f"digits (validation), {platform.count_items(digits, SUBSETS['validation'])} items" in line, line
    assert "f1_macro=" in line
    # a ranking of scores taken on different data says so, and --evaluated-on ranks by one subset's
    assert "note: this ranking mixes scores taken on different data" in out
    rows = listed(platform, capsys, "models", "--sort", "accuracy", "--evaluated-on", "test")
    assert [r["metrics"]["accuracy"] for r in rows[:2]] == sorted(accuracy.values(), reverse=True)
    assert {r["evaluated_on"]["subset"] for r in rows[:2]} == {"test"}
    code, out, _ = store(platform, capsys, "models", "--sort", "accuracy", "--evaluated-on", "test")
    assert "latest evaluation on test" in out and "note: this ranking mixes" not in out
    code, _out, err = store(platform, capsys, "models", "--evaluated-on", "tset")
    assert code == 2 and "no evaluation in the store was taken on a subset named 'tset' (did you mean test?)" in err
    # show lists every evaluation, latest first
    shown = listed(platform, capsys, "show", "digits-lr-v1")
    assert [e["subset"] for e in shown["evaluations"]] == ["validation", "test"]
    assert shown["evaluations"][1]["metrics"]["accuracy"] == accuracy["digits-lr-v1"]
    code, out, _ = store(platform, capsys, "show", "digits-lr-v1")
    assert "every evaluation (2), latest first:" in out
    # on a filter that is none of its subsets: no subset named
    adapter.evaluate_model(v1, digits, filters={"filter": {"dir": "/test"}, "resource": "items",
                                                "page": 0, "pageSize": 1000})
    [row] = [r for r in listed(platform, capsys, "models") if r["name"] == "digits-lr-v1"]
    assert row["evaluated_on"]["subset"] is None


def test_a_sort_by_a_metric_no_listed_model_has_is_refused_naming_those_they_have(platform, digits, versions,
                                                                                  capsys):
    for typo, close in (("acuracy", "accuracy"), ("ACCURACY", "accuracy"), ("f1macro", "f1_macro"), ("f1", "f1_macro")):
        code, out, err = store(platform, capsys, "models", "--sort", typo)
        assert code == 2 and out == "" and f"error: no listed model has a metric {typo!r}" in err
        assert f"(did you mean {close}?)" in err and f"  where: --sort {typo}" in err
        assert re.search(r"  fix: sort by one they have: .*\baccuracy, balanced_accuracy, cohen_kappa\b", err)
    code, _, err = store(platform, capsys, "models", "--sort", "zzz")
    assert code == 2 and "did you mean" not in err and "f1_weighted" in err
    assert "per_label" not in err and "confusion_matrix" not in err  # not numbers: nothing to sort by
    # the models listed are those the filters leave: the base model alone has no evaluation
    code, _, err = store(platform, capsys, "models", "--status", "created", "--sort", "accuracy")
    assert code == 2 and "none of them has been evaluated" in err and "pipeline=evaluate" in err
    code, _, err = store(platform, capsys, "models", "--sort", "")
    assert code == 2 and "no listed model has a metric ''" in err
    code, out, _ = store(platform, capsys, "models", "--status", "failed", "--sort", "acuracy")
    assert code == 0 and "no models with status 'failed'" in out  # nothing listed: nothing to sort


def test_json_carries_every_number_of_the_latest_evaluation_and_the_table_prints_counts_whole(
        platform, digits, versions, capsys):
    _base, v1, _v2 = versions
    evaluation = platform.latest_evaluation(v1)
    rows = {r["name"]: r for r in listed(platform, capsys, "models")}
    numbers = {k: v for k, v in evaluation.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert rows[v1.name]["metrics"] == numbers and len(numbers) > 10
    assert {"f1_macro", "f1_weighted", "cohen_kappa"} <= set(numbers) and "per_label" not in numbers
    code, out, _ = store(platform, capsys, "models")  # the table still shows a few
    line = next(line for line in out.splitlines() if line.startswith(f"{v1.name} "))
    assert "accuracy=" in line and "cohen_kappa" not in line and "n_items" not in line
    n_test = platform.count_items(digits, SUBSETS["test"])
    code, out, _ = store(platform, capsys, "models", "--sort", "n_items")
    line = next(line for line in out.splitlines() if line.startswith(f"{v1.name} "))
    assert code == 0 and f"n_items={n_test} accuracy=0." in line, line


def test_an_empty_listing_names_the_statuses_its_dataset_has_not_the_whole_stores(platform, digits, versions,
                                                                                   capsys, tmp_path):
    write_images(tmp_path / "photos")
    photos = import_image_folder(platform, tmp_path / "photos", "photos").dataset
    code, out, _ = store(platform, capsys, "models", "--dataset", "photos")
    assert code == 0 and out.splitlines()[1:] == ["no models of dataset 'photos'"]  # not digits' 'trained'
    platform.create_model("photos-model", photos, labels=["cat", "dog"])
    code, out, _ = store(platform, capsys, "models", "--dataset", "photos", "--status", "trained")
    assert out.splitlines()[1:] == \
        ["no models of dataset 'photos' with status 'trained' (their statuses: created)"]
    code, out, _ = store(platform, capsys, "models", "--status", "failed")  # no --dataset: the whole store's
    assert out.splitlines()[1:] == ["no models with status 'failed' (statuses here: created, trained)"]


def test_json_before_a_command_that_prints_no_listing_is_refused(platform, digits, versions, capsys):
    assert [r["name"] for r in listed(platform, capsys, "models", "--status", "created")] == ["digits-lr"]
    assert main(["--json", "--root", str(platform.root), "models", "--status", "created"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["digits-lr"]
    with pytest.raises(SystemExit) as exit_:
        main(["--json", "--root", str(platform.root), "delete-model", "digits-lr-v1", "--yes"])
    assert exit_.value.code == 2
    assert "--json: delete-model prints no listing" in capsys.readouterr().err
    assert platform.find_model("digits-lr-v1") is not None


def test_delete_model_takes_its_records_blobs_and_folders_and_nothing_else(platform, digits, versions, capsys):
    base, v1, v2 = versions
    for folder in (model_folder(v1.name), model_data_folder(v1.id, v1.name)):
        assert folder.is_dir()  # loaded artifacts, exported data
    only_v1 = artifact_blobs(platform, v1) - artifact_blobs(platform, v2)
    assert only_v1 and only_v1 <= blobs_on_disk(platform)
    v2_predictions = platform.store.count_annotations(digits.id, v2.name)

    code, out, err = store(platform, capsys, "delete-model", "digits-lr-v1", "--yes")
    assert code == 0, err
    assert f"deleted 1 model(s) from the local platform at {platform.root}: digits-lr-v1" in out
    assert platform.find_model("digits-lr-v1") is None
    assert platform.store.count_annotations(digits.id, "digits-lr-v1") == 0
    assert not only_v1 & blobs_on_disk(platform)
    assert not model_folder(v1.name).exists() and not model_data_folder(v1.id, v1.name).exists()
    for table in ("artifacts", "metric_samples", "evaluations", "feature_sets"):
        assert platform.store.query(f"SELECT COUNT(*) FROM {table} WHERE model_id = ?", (v1.id,))[0][0] == 0
    # the other version is whole: its predictions, its evaluation, its artifacts' bytes
    assert platform.store.count_annotations(digits.id, v2.name) == v2_predictions > 0
    assert platform.latest_evaluation(v2)["accuracy"] > 0
    assert artifact_blobs(platform, v2) <= blobs_on_disk(platform)
    assert len(platform.list_datasets()[0].items.list().items) > 0


def test_a_clone_keeps_the_artifacts_it_shares_with_a_deleted_model(platform, digits, versions, capsys, tmp_path):
    _base, v1, _v2 = versions
    copy = platform.clone_model(v1, "digits-lr-copy")  # artifacts shared by content
    assert artifact_blobs(platform, copy) == artifact_blobs(platform, v1)
    code, out, _err = store(platform, capsys, "delete-model", "digits-lr-v1", "-y")
    assert code == 0
    # the delete names the version that loses its lineage
    assert out.rstrip().endswith("1 version(s) cloned from them stay, listed as cloned from a deleted model: "
                                 "digits-lr-copy")
    rows = {r["name"]: r for r in listed(platform, capsys, "models")}
    assert rows["digits-lr-copy"]["cloned_from"] == f"{v1.id} (deleted)"
    adapter = SklearnImageClassifier(model_entity=platform.get_model(copy.id))
    adapter.load_from_model()
    assert adapter.predict_items(digits.items.list(filters=None).items[:8])[1]


def test_delete_model_patterns_status_and_predictions(platform, digits, versions, capsys):
    _base, v1, v2 = versions
    code, out, _ = store(platform, capsys, "delete-model", "digits-lr-*", "--status", "failed", "--yes")
    assert code == 0 and "no model matches digits-lr-* with status 'failed'" in out and "nothing to delete" in out
    # a name that is not a pattern and matches nothing is a typo: nothing is deleted, not even the rest
    code, _, err = store(platform, capsys, "delete-model", "digits-lr-v1", "digits-lr-v3", "--yes")
    assert code == 2 and "no model named 'digits-lr-v3' (did you mean digits-lr-v2?)" in err
    assert "statuses here: created, trained)\n" in err and "a pattern" not in err  # the close name is the fix
    code, _, err = store(platform, capsys, "delete-model", "resnet", "--yes")  # nothing close: a pattern may be meant
    assert code == 2 and "statuses here: created, trained); a pattern such as 'resnet*' names every model" in err
    assert len(platform.list_models()) == 3

    v2.status = "training"
    platform.update_model(v2)
    code, _, err = store(platform, capsys, "delete-model", "digits-lr-v*", "--yes")
    assert code == 2 and "digits-lr-v2: status 'training'" in err and "--force" in err
    assert len(platform.list_models()) == 3  # refused whole: v1 is still there too

    predictions = platform.store.count_annotations(digits.id, "digits-lr-v1")
    code, out, err = store(platform, capsys, "delete-model", "digits-lr-v*", "--force", "--keep-predictions", "--yes")
    assert code == 0, err
    assert [m.name for m in platform.list_models()] == ["digits-lr"]
    assert platform.store.count_annotations(digits.id, "digits-lr-v1") == predictions > 0


def test_delete_asks_first(platform, digits, versions, capsys, monkeypatch):
    code, _, err = store(platform, capsys, "delete-model", "digits-lr-v1")
    assert code == 2 and "add --yes" in err  # no terminal to ask on
    for answer in ("n\n", ""):  # no, or Ctrl-D
        monkeypatch.setattr(sys, "stdin", Terminal(answer))
        code, out, _ = store(platform, capsys, "delete-model", "digits-lr-v1")
        assert code == 1 and "nothing deleted" in out and platform.find_model("digits-lr-v1") is not None
        assert f"from the local platform at {platform.root}" in out  # the question names the store
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, _ = store(platform, capsys, "delete-model", "digits-lr-v1")
    assert code == 0 and platform.find_model("digits-lr-v1") is None


def write_images(folder: Path, n: int = 6) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    written = {}
    for i in range(n):
        path = folder / ("cat" if i % 2 else "dog") / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path)
        written[path.name] = path.read_bytes()
    return written


def test_delete_dataset_keeps_bytes_another_dataset_uses(platform, tmp_path, capsys):
    written = write_images(tmp_path / "photos")
    a = import_image_folder(platform, tmp_path / "photos", "a").dataset
    b = import_image_folder(platform, tmp_path / "photos", "b").dataset  # the same bytes: the same blobs
    platform.create_model("a-model", a, labels=["cat", "dog"])

    code, _, err = store(platform, capsys, "delete-dataset", "a", "--yes")
    assert code == 2 and "dataset 'a' is the dataset of 1 model(s): a-model" in err and "--with-models" in err
    assert platform.count_items(a, None) == len(written)  # refused: nothing deleted

    code, out, err = store(platform, capsys, "delete-dataset", "a", "--with-models", "--yes")
    assert code == 0, err
    truth = platform.store.dataset_counts(platform.project.id)[b.id]["annotations"]  # b holds what a held
    assert f"deleted dataset 'a' from the local platform at {platform.root}: {len(written)} items, {truth} " \
        "annotations, 0 predictions, 1 model(s): a-model" in out
    assert platform.find_dataset("a") is None and platform.find_model("a-model") is None
    assert platform.store.query("SELECT COUNT(*) FROM annotations WHERE dataset_id = ?", (a.id,))[0][0] == 0
    assert {i.name: platform.read_item_bytes(i) for i in b.items.list().items} == written

    assert store(platform, capsys, "delete-dataset", "b", "--yes")[0] == 0
    assert blobs_on_disk(platform) == set()  # the last user of those bytes is gone
    assert listed(platform, capsys, "datasets") == []


def test_an_import_puts_back_bytes_a_delete_removed_while_it_waited(platform, tmp_path):
    """Blobs are written before the import takes the write lock; a delete (under the lock) may remove
    the same bytes in between. The import checks again under the lock and writes them back."""
    written = write_images(tmp_path / "photos")
    a = import_image_folder(platform, tmp_path / "photos", "a").dataset
    importer = LocalPlatform(platform.root)  # another job on the same store
    done = {}
    with platform.store.write():  # hold the write lock
        thread = threading.Thread(target=lambda: done.update(
            b=import_image_folder(importer, tmp_path / "photos", "b").dataset))
        thread.start()
        time.sleep(1.0)  # the import has found its blobs there already, and waits for the lock
        platform.delete_dataset(a)  # joins this transaction: b holds no row yet, so the bytes go
        assert blobs_on_disk(platform) == set()
    thread.join(timeout=60)
    b = done["b"]
    assert {i.name: platform.read_item_bytes(i) for i in platform.get_dataset(b.id).items.list().items} == written
    # the delete ran inside this test's transaction, so its trash waited for the commit: the next
    # opening of the store settles it (b's rows use those bytes now: they stay, from b's own put)
    assert list((platform.root / "blobs").glob(".trash-*"))
    reopened = LocalPlatform(platform.root)
    assert not list((platform.root / "blobs").glob(".trash-*"))
    assert blobs_on_disk(reopened) == {blob for blob, in reopened.store.query("SELECT blob FROM items")}


def test_the_command_line_after_runs(tmp_path):
    """The real commands: a run, its version deleted, the dataset deleted, and a run again."""
    env = {**os.environ, "DATALOOP_PATH": str(tmp_path / "dl")}

    def run(*args: str, module: str = "runner.store") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)

    usage = run("--help")
    assert usage.returncode == 0 and all(c in usage.stdout for c in ("datasets", "models", "delete-model",
                                                                      "delete-dataset", "export"))
    first = run(module="runner")
    assert first.returncode == 0, first.stderr
    listing = run("models")
    assert listing.returncode == 0, listing.stderr
    versions = [line.split()[0] for line in listing.stdout.splitlines()[3:] if " trained " in line]
    assert len(versions) == 1 and "accuracy=" in listing.stdout
    for args in (("--json", "datasets"), ("datasets", "--json")):  # --json before or after the command
        shown = run(*args)
        assert shown.returncode == 0, shown.stderr
        assert [d["name"] for d in json.loads(shown.stdout)] == ["digits"]

    # read by a reader that stops at once (| head -0): no traceback, the shell's code for a closed pipe
    for args in (("show", versions[0]), ("models",)):
        reader_gone = subprocess.Popen([sys.executable, "-m", "runner.store", *args], cwd=tmp_path, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        reader_gone.stdout.close()
        assert (reader_gone.wait(timeout=300), reader_gone.stderr.read()) == (141, ""), args

    # an item's file removed by hand: check names it, and --restore imports digits again from its source
    root = tmp_path / "dl" / "local"
    [(blob,)] = sqlite3.connect(root / "platform.db").execute("SELECT blob FROM items LIMIT 1").fetchall()
    (root / "blobs" / blob[:2] / blob).unlink()
    checked = run("check")
    assert checked.returncode == 1 and "--restore imports the dataset again from its source" in checked.stdout
    restored = run("check", "--restore")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restore: importing dataset 'digits' again from runner.data.import_digits" in restored.stdout
    assert "put back the bytes of 1 item file(s)" in restored.stderr
    assert "every record has its file" in restored.stdout and (root / "blobs" / blob[:2] / blob).is_file()
    assert re.search(rf"^model_data: 1 training data copy \(\d+\.\d MB on disk\) in {re.escape(str(tmp_path / 'dl'))}"
                     "/model_data, which no later run reads: --clean-model-data removes them", restored.stdout,
                     re.MULTILINE), restored.stdout
    # the copy's many small files take whole blocks: the disk use, not the bytes, is what reclaiming gives
    copy_files = [f for f in (tmp_path / "dl" / "model_data").rglob("*") if f.is_file()]
    on_disk = float(re.search(r"\((\d+\.\d) MB on disk\)", restored.stdout).group(1))
    assert on_disk == round(sum(f.stat().st_blocks * 512 for f in copy_files) / 1e6, 1)
    assert on_disk > sum(f.stat().st_size for f in copy_files) / 1e6
    unasked = run("check", "--clean-model-data")  # no terminal to ask on: refused before anything is removed
    assert unasked.returncode == 2 and "add --yes" in unasked.stderr and len(copy_files) > 0
    assert all(f.exists() for f in copy_files)
    cleaned = run("check", "--clean-model-data", "--yes")
    assert cleaned.returncode == 0 and "model_data: removed 1 training data copy (" in cleaned.stdout, cleaned.stdout
    assert list((tmp_path / "dl" / "model_data").iterdir()) == []  # the model's folder went with its only copy

    deleted = run("delete-model", versions[0], "--yes")
    assert deleted.returncode == 0 and f"deleted 1 model(s) from the local platform at {tmp_path / 'dl' / 'local'}: " \
        f"{versions[0]}" in deleted.stdout
    refused = run("delete-dataset", "digits", "--yes")
    assert refused.returncode == 2 and "--with-models" in refused.stderr
    gone = run("delete-dataset", "digits", "--with-models", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert "no datasets" in run("datasets").stdout

    again = run(module="runner")  # imports digits and creates the base model again
    assert again.returncode == 0, again.stderr
    assert re.search(r"^digits +1797 +1797 ", run("datasets").stdout, re.MULTILINE)


def test_a_killed_delete_leaves_no_blob_missing(platform, tmp_path):
    """A delete killed after moving blobs out, before its transaction committed, leaves them in its
    trash folder with their records still there: the next opening of the store puts them back."""
    written = write_images(tmp_path / "photos")
    a = import_image_folder(platform, tmp_path / "photos", "a").dataset
    shas = sorted(blobs_on_disk(platform))
    trash = platform.root / "blobs" / ".trash-killed"
    platform.blobs.move_out(shas, trash, [])
    (trash / ("0" * 64)).write_bytes(b"bytes no record uses")
    reopened = LocalPlatform(platform.root)
    assert not trash.exists() and blobs_on_disk(reopened) == set(shas)
    assert {i.name: reopened.read_item_bytes(i) for i in reopened.get_dataset(a.id).items.list().items} == written


def test_a_job_whose_model_is_deleted_stores_nothing_more_and_says_why(platform, digits, versions, capsys):
    _base, v1, _v2 = versions
    adapter = SklearnImageClassifier(model_entity=v1)
    adapter.load_from_model()
    assert store(platform, capsys, "delete-model", "digits-lr-v1", "--yes")[0] == 0
    items = digits.items.list(filters=None).items[:20]
    with pytest.raises(PredictionError) as raised:
        adapter.predict_items(items)
    assert "is not in the local platform" in str(raised.value) and "delete-model" in str(raised.value)
    assert platform.store.count_annotations(digits.id, "digits-lr-v1") == 0  # no orphan predictions
    with pytest.raises(NotFoundError, match="deleted while this run was using it"):
        platform.store_evaluation(v1, digits, {"accuracy": 1.0})
    with pytest.raises(NotFoundError, match="any more: it cannot be updated"):
        v1.update()


def test_export_writes_the_chosen_annotations_and_imports_back(platform, digits, versions, capsys, tmp_path):
    """``export``: the test folder with ground truth and one version's predictions, as Dataloop's export
    layout; importing it gives the same items and annotations; bad requests write nothing."""
    from runner.data import import_dataloop_export

    _base, v1, v2 = versions
    n_test = platform.count_items(digits, SUBSETS["test"])
    code, out, err = store(platform, capsys, "export", "digits", str(tmp_path / "out"), "--model", v1.name,
                           "--dir", "test")
    assert code == 0, err
    assert f"exported {n_test} items of dataset 'digits', with ground truth and the predictions of {v1.name} " \
           f"({n_test} ground-truth annotations, {n_test} predictions)" in out
    files = sorted((tmp_path / "out" / "json").rglob("*.json"))
    assert len(files) == n_test and len(list((tmp_path / "out" / "items").rglob("*.png"))) == n_test
    exported = [json.loads(p.read_text()) for p in files]
    assert all(item["dir"] == "/test" for item in exported)
    sources = [[(a.get("metadata") or {}).get("system", {}).get("model", {}).get("name") for a in item["annotations"]]
               for item in exported]
    assert all(sorted(s, key=str) == [None, v1.name] for s in sources)  # one label, one v1 prediction; no v2
    item = platform.get_dataset(name="digits").items.get(filepath=exported[0]["filename"])
    truth = [a.label for a in item.annotations.list() if "model" not in (a.metadata.get("system") or {})]
    assert [a["label"] for a in exported[0]["annotations"] if a["metadata"].get("system", {}).get("model") is None] \
        == truth

    result = import_dataloop_export(platform, tmp_path / "out", "digits-test")
    copy = platform.get_dataset(name="digits-test")
    assert result.added == n_test and platform.count_items(copy, None) == n_test
    counts = platform.store.dataset_counts(platform.project.id)[copy.id]
    assert (counts["annotations"], counts["predictions"]) == (n_test, n_test)

    code, out, err = store(platform, capsys, "export", "digits", str(tmp_path / "preds"), "--no-ground-truth")
    assert code == 0, err
    models_seen = {a["metadata"]["system"]["model"]["name"] for p in (tmp_path / "preds" / "json").rglob("*.json")
                   for a in json.loads(p.read_text())["annotations"]}
    assert models_seen == {v1.name, v2.name}
    code, out, err = store(platform, capsys, "export", "digits", str(tmp_path / "base"), "--model", "digits-lr",
                           "--dir", "/test")  # the base model predicted nothing: said, not an error
    assert code == 0 and f"({n_test} ground-truth annotations, 0 predictions)" in out
    assert "note: digits-lr has no predictions on these items" in out

    # a dl.Filters with an annotation join: only the items that hold such an annotation
    three = dl_filters_json(field="dir", values="/test", join_label="3")
    code, out, err = store(platform, capsys, "export", "digits", str(tmp_path / "threes"), "--filter", three,
                           "--no-ground-truth", "--model", v1.name)
    assert code == 0, err
    labels = [[a["label"] for a in json.loads(p.read_text())["annotations"]]
              for p in (tmp_path / "threes" / "json").rglob("*.json")]
    truth_threes = platform.count_items(digits, json.loads(three))
    assert len(labels) == truth_threes > 0

    for args, message in ((["nested/deeper/out", "--dir", "/nothere"], "no item of dataset 'digits' matches"),
                          (["out"], "already exists and is not an empty folder"),
                          (["new", "--dir", "/nothere"], "no item of dataset 'digits' matches"),
                          (["new", "--filter", '{"bogus": 1}'], "unknown items field 'bogus'"),
                          (["new", "--filter", "[1]"], "--filter must be a JSON object"),
                          (["new", "--model", "no-such-version"], "no model named 'no-such-version'")):
        before = sorted(p.name for p in tmp_path.iterdir())
        code, out, err = store(platform, capsys, "export", "digits", str(tmp_path / args[0]), *args[1:])
        assert code == 2 and message in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no partial folder left


def dl_filters_json(field: str, values: str, join_label: str) -> str:
    import dtlpy as dl

    filters = dl.Filters(field=field, values=values)
    filters.add_join(field="label", values=join_label)
    return json.dumps(filters.prepare())


@pytest.mark.parametrize("command", [["models"], ["delete-model", "*", "--yes"]])
def test_a_misspelt_status_is_refused_not_matched_by_nothing(platform, digits, capsys, command):
    platform.create_model("digits-lr", digits)
    with pytest.raises(SystemExit) as exit_:
        store(platform, capsys, *command, "--status", "trianed")
    assert exit_.value.code == 2
    assert "invalid choice: 'trianed'" in capsys.readouterr().err
    assert platform.find_model("digits-lr") is not None


def test_check_names_records_whose_file_is_gone_and_cleans_only_unused_files(platform, digits, versions, capsys,
                                                                             caplog):
    _base, v1, _v2 = versions
    code, out, _err = store(platform, capsys, "check")
    assert code == 0 and "every record has its file" in out
    before = blobs_on_disk(platform)

    orphan = platform.blobs.put_bytes(b"bytes of an import that stopped before its records")
    folder = platform.root / "blobs" / orphan[:2]
    old_partial, new_partial = folder / ".tmp-old", folder / ".tmp-new"  # a write killed long ago; a running one
    old_partial.write_bytes(b"x" * 10)
    os.utime(old_partial, (time.time() - 7200, time.time() - 7200))
    new_partial.write_bytes(b"y")
    stray = platform.root / "blobs" / "00" / "put-here-by-hand"  # not a blob: no record can use it
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"z" * 5)
    item = next(platform.iter_items(digits, SUBSETS["test"]))[0]
    item_blob = platform.store.item_blob(item.id)[0]
    same_bytes = [r[0] for r in platform.store.query("SELECT filename FROM items WHERE blob = ?", (item_blob,))]
    [(artifact, artifact_blob, _size)] = platform.store.list_artifacts(v1.id)
    os.unlink(platform.blobs.path(item_blob))
    os.unlink(platform.blobs.path(artifact_blob))

    code, out, _err = store(platform, capsys, "check")
    assert code == 1
    assert f"missing: the files of {len(same_bytes)} item(s) are gone" in out and f"digits: {item.filename}" in out
    assert f"digits-lr-v1: {artifact}  ({platform.blobs.path(artifact_blob)})" in out
    assert "unused: 3 file(s)" in out and "--clean removes them" in out
    assert orphan in blobs_on_disk(platform) and stray.exists()  # a check alone removes nothing

    code, out, _err = store(platform, capsys, "check", "--clean")
    assert code == 1 and "removed 3 file(s)" in out, out
    assert blobs_on_disk(platform) == before - {item_blob, artifact_blob} | {new_partial.name}
    assert not old_partial.exists() and new_partial.exists() and not stray.exists()

    with pytest.raises(RunnerError, match=f"the file of item {item.filename} of dataset 'digits' is gone") as err:
        item.download(save_locally=False)
    assert err.value.where == platform.blobs.path(item_blob) and "runner.store check" in err.value.fix
    code, _out, stderr = store(platform, capsys, "export", "digits", str(platform.root.parent / "out"), "--dir", "/test")
    assert code == 2 and "is gone from the store" in stderr and not (platform.root.parent / "out").exists()

    with caplog.at_level("WARNING", logger="runner.data"):
        assert import_digits(platform).added == 0  # the same files: their bytes go back, no item is added
    assert f"put back the bytes of {len(same_bytes)} item file(s)" in caplog.text
    assert item.download(save_locally=False).getvalue()[:4] == b"\x89PNG"
    code, out, _err = store(platform, capsys, "check")
    assert code == 1 and "item(s) are gone" not in out and "artifact(s) are gone" in out
    new_partial.unlink()
    store(platform, capsys, "delete-model", "digits-lr-v1", "--yes")
    code, out, _err = store(platform, capsys, "check")
    assert code == 0 and "every record has its file, and every file a record" in out


def _damage(path: str, how: str) -> None:
    os.chmod(path, 0o644)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2] if how == "cut" else data[:-1] + bytes([data[-1] ^ 1]))


def test_check_finds_files_cut_short_or_changed_and_their_reads_name_them(platform, digits, versions, capsys):
    _base, v1, _v2 = versions
    cut, changed = (page[0] for page in (next(platform.iter_items(digits, SUBSETS[s])) for s in ("test", "train")))
    cut_blob, changed_blob = (platform.store.item_blob(i.id)[0] for i in (cut, changed))
    [(artifact, artifact_blob, size)] = platform.store.list_artifacts(v1.id)
    _damage(platform.blobs.path(cut_blob), "cut")
    _damage(platform.blobs.path(changed_blob), "flip")
    _damage(platform.blobs.path(artifact_blob), "cut")

    code, out, _err = store(platform, capsys, "check")  # sizes only: the flipped byte kept its file's size
    assert code == 1 and "damaged: the files of 1 item(s) in blobs/ are not the bytes stored; --restore" in out
    assert f"digits: {cut.filename}  ({platform.blobs.path(cut_blob)}: " in out and changed.filename not in out
    assert f"digits-lr-v1: {artifact}  ({platform.blobs.path(artifact_blob)}: {size // 2} bytes, not the {size} " \
           "stored)" in out
    code, out, _err = store(platform, capsys, "check", "--verify")
    assert code == 1 and "damaged: the files of 2 item(s)" in out and ", hashing each" in out
    assert f"{changed.filename}  ({platform.blobs.path(changed_blob)}: its bytes changed since they were stored)" in out

    with pytest.raises(RunnerError, match=f"the file of item {cut.filename} of dataset 'digits' is damaged") as err:
        cut.download(save_locally=False)
    assert "check --restore" in err.value.fix
    with pytest.raises(ArtifactError, match=f"artifact '{artifact}' of model 'digits-lr-v1' is damaged: its file") as err:
        SklearnImageClassifier(model_entity=v1).load_from_model(v1)
    assert err.value.where == platform.blobs.path(artifact_blob)

    with platform.store.write() as con:  # as a store from before every import recorded its source
        con.execute("DELETE FROM meta WHERE key = ?", (f"import_source:{digits.id}",))
    code, out, _err = store(platform, capsys, "check", "--verify", "--restore")
    assert "dataset 'digits' records no import source" in out and "damaged: the files of 2 item(s)" in out  # kept
    platform.record_import_source(digits, {"_target_": "runner.data.import_digits"})  # as a run records it
    code, out, _err = store(platform, capsys, "check", "--verify", "--restore")  # the import writes both again
    assert code == 1 and "item(s)" not in out.partition("damaged")[2] and "1 artifact(s)" in out
    assert cut.download(save_locally=False).getvalue()[:4] == b"\x89PNG"
    store(platform, capsys, "delete-model", "digits-lr-v1", "--yes")
    code, out, _err = store(platform, capsys, "check", "--verify")
    assert code == 0 and "every record has its file, and every file a record" in out


def test_clean_model_data_keeps_the_copy_of_a_training_under_way(platform, digits, versions, capsys):
    _base, v1, v2 = versions
    v2.status = "training"  # as a training that runs now has it
    v2.update()
    done, under_way = (model_data_folder(v.id, v.name) for v in (v1, v2))
    assert any(done.iterdir()) and any(under_way.iterdir())  # each training's own copy
    code, out, _err = store(platform, capsys, "check", "--clean-model-data", "--yes")
    assert code == 0 and "model_data: removed 1 training data copy (" in out, out
    assert "left the copies of 1 training(s) under way" in out
    assert not done.exists() and any(under_way.iterdir())


def test_show_prints_one_version_whole_and_names_a_misspelt_one(platform, digits, versions, capsys):
    _base, v1, _v2 = versions
    code, out, _err = store(platform, capsys, "show", "digits-lr-v1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["model", "digits-lr-v1", f"({v1.id})"]
    assert ["cloned", "from", "digits-lr"] in [line.split() for line in lines]
    assert ["status", "trained"] in [line.split() for line in lines]
    assert "    _target_: sklearn.linear_model.LogisticRegression" in lines  # its configuration, as YAML
    assert any(re.match(r"  test +\{\"\$and\"", line) for line in lines)  # a subset and its filter
    [(artifact, _blob, size)] = platform.store.list_artifacts(v1.id)
    assert any(line.split() == [artifact, str(size)] for line in lines)
    accuracy = platform.latest_evaluation(v1)["accuracy"]
    assert "latest evaluation, on digits (test):" in lines
    assert any(line.split() == ["accuracy", f"{accuracy:.4f}"] for line in lines)
    assert "run folder" not in out  # trained from Python, not by a run

    shown = listed(platform, capsys, "show", "digits-lr")  # the base: no artifacts, never evaluated
    assert shown["artifacts"] == [] and shown["evaluation"] is None and shown["cloned_from"] is None
    assert shown["use"] == {}  # no weights: no evaluate or predict command, which would only fail
    code, out, _err = store(platform, capsys, "show", "digits-lr")
    assert "artifacts: none" in out and "not evaluated" in out

    code, _out, err = store(platform, capsys, "show", "digits-lr-1")
    assert code == 2 and "no model named 'digits-lr-1' (did you mean digits-lr-v1?)" in err


def test_show_gives_no_commands_of_a_run_folder_that_holds_another_run_now(platform, digits, versions, capsys,
                                                                           tmp_path):
    """``hydra.run.dir`` (or a sweep folder) used again: its ``.hydra/`` is the later run's, whose
    command would not train this version again."""
    _base, v1, _v2 = versions
    run = tmp_path / "run"
    trained_in(v1, run, tmp_path, {"adapter": "sklearn"}, ["adapter.configuration.estimator.C=1.0"])
    shown = listed(platform, capsys, "show", "digits-lr-v1")
    assert shown["rerun"] == f"cd {tmp_path} && python -m runner adapter.configuration.estimator.C=1.0"
    assert shown["run_reused"] is False and shown["use"]

    (run / "model.json").write_text(json.dumps({"id": "a later run's version"}))
    shown = listed(platform, capsys, "show", "digits-lr-v1")
    assert shown["rerun"] is None and shown["use"] == {} and shown["run_reused"] is True
    code, out, _err = store(platform, capsys, "show", "digits-lr-v1")
    assert code == 0 and f"{run} (holds another run now: the folder was used again, so no command of it is given)" \
        in out and "rerun" not in out


def test_show_prints_a_long_subset_filter_shortened_and_json_keeps_it_whole(platform, digits, capsys):
    """A random split's subsets are lists of item ids: hundreds of them on one line helped no one."""
    ids = [item.id for page in platform.iter_items(digits, SUBSETS["test"]) for item in page][:10]
    subsets = {"test": {"filter": {"$and": [{"hidden": False}, {"id": {"$in": ids}}]}, "resource": "items"}}
    platform.create_model("split", digits, subsets=subsets)
    code, out, _err = store(platform, capsys, "show", "split")
    assert code == 0
    line = next(line for line in out.splitlines() if line.strip().startswith("test "))
    assert line.split(None, 1)[1] == json.dumps({"$and": [{"hidden": False}, {"id": {"$in": [*ids[:3], "... 7 more"]}}]})
    assert listed(platform, capsys, "show", "split")["subsets"] == subsets


def test_a_new_local_platform_says_so_and_an_existing_one_does_not(tmp_path, caplog):
    """A DATALOOP_PATH or platform.root naming another folder than meant would otherwise start an
    empty store in silence."""
    import logging

    with caplog.at_level(logging.INFO, logger="runner"):
        LocalPlatform(tmp_path / "here")
    assert f"a new local platform at {tmp_path / 'here'} (there was none)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="runner"):
        LocalPlatform(tmp_path / "here")
    assert "a new local platform" not in caplog.text


def test_compare_puts_versions_side_by_side_marks_the_best_and_names_the_settings_that_differ(
        platform, digits, versions, capsys):
    base, v1, v2 = versions
    scores = {v.name: platform.latest_evaluation(v) for v in (v1, v2)}
    compared = listed(platform, capsys, "compare", "digits-lr-v1", "digits-lr-v2")
    assert [m["name"] for m in compared["models"]] == ["digits-lr-v1", "digits-lr-v2"]
    assert compared["metrics"]["accuracy"] == [scores["digits-lr-v1"]["accuracy"], scores["digits-lr-v2"]["accuracy"]]
    assert compared["configuration_differs"] == {"estimator.C": [1.0, 0.05]}  # and nothing else: same batch_size
    assert compared["evaluated_alike"] is True
    better = max((0, 1), key=lambda i: compared["metrics"]["f1_macro"][i])
    assert f"{compared['metrics']['f1_macro'][0]:.4f}" != f"{compared['metrics']['f1_macro'][1]:.4f}"
    assert compared["best"]["f1_macro"] == [better]
    assert compared["best"]["n_items"] == []  # a count is no score

    code, out, _err = store(platform, capsys, "compare", "digits-lr-v*")  # a pattern: both, oldest first
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    f1 = [f"{v:.4f}" for v in compared["metrics"]["f1_macro"]]
    f1[better] += " *"
    assert rows["f1_macro"] == " ".join(f1).split()
    assert rows["estimator.C"] == ["1.0", "0.05"]  # as set, not rounded: 2e-05 would print 0.0000
    assert "note: their latest evaluations scored different data" not in out

    # the base was never evaluated: said, and no metric of the others marked against nothing
    code, out, _err = store(platform, capsys, "compare", "digits-lr", "digits-lr-v1")
    assert code == 0 and "not evaluated" in out and " *" not in out
    assert "note: their latest evaluations scored different data" not in out
    # evaluated on different subsets: said, as their scores do not compare
    SklearnImageClassifier(model_entity=v1).evaluate_model(v1, digits, filters=SUBSETS["validation"])
    code, out, _err = store(platform, capsys, "compare", "digits-lr-v1", "digits-lr-v2")
    assert "note: their latest evaluations scored different data or settings (evaluated on, above), so no best is " \
           "marked: compare the evaluations each has on test (--evaluated-on test)" in out
    assert " *" not in out and not any(listed(platform, capsys, "compare", "digits-lr-v*")["best"].values())
    # unless told which evaluations to compare
    on_test = listed(platform, capsys, "compare", "digits-lr-v1", "digits-lr-v2", "--evaluated-on", "test")
    assert on_test["metrics"]["accuracy"] == compared["metrics"]["accuracy"] and on_test["evaluated_alike"]
    code, out, _err = store(platform, capsys, "compare", "digits-lr-v1", "digits-lr-v2", "--evaluated-on", "validation")
    assert "not evaluated on validation" in out

    code, _out, err = store(platform, capsys, "compare", "digits-lr-v1", "digits-lr-x2")
    assert code == 2 and "no model named 'digits-lr-x2' (did you mean digits-lr-v2?)" in err
    code, _out, err = store(platform, capsys, "compare", "digits-lr-v1", "digits-lr-v1")
    assert code == 2 and "compare needs two or more" in err
    code, _out, err = store(platform, capsys, "compare", "nothing-*", "digits-lr-v1")
    assert code == 2 and "no model matches 'nothing-*'" in err


def test_compare_leaves_out_of_the_overrides_row_the_settings_its_table_of_differences_shows(capsys):
    from runner.model_compare import print_comparison

    def version(name, overrides):
        return {"name": name, "status": "trained", "dataset": "digits", "cloned_from": "m", "created": None,
                "adapter": {"option": "sklearn"}, "labels": ["0"], "overrides": overrides, "evaluation": None}
    models = [version("m-1", ["adapter.configuration.estimator.C=0.1", "seed=1", "dataset=digits", "batch_size=16"]),
              version("m-2", ["adapter.configuration.estimator.C=1.0", "seed=2", "dataset=digits", "batch_size=64"])]
    print_comparison({"models": models, "metrics": {}, "best": {}, "evaluated_on": None, "evaluated_alike": True,
                      "configuration_differs": {"estimator.C": [0.1, 1.0], "batch_size": [16, 64]}})
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["run", "overrides", "seed=1", "seed=2"] in rows  # C has its row below; the shared dataset= none
    assert ["estimator.C", "0.1", "1.0"] in rows


def test_compare_of_many_versions_prints_a_row_each_with_its_settings_beside_its_scores(capsys):
    """A sweep's dozens of versions side by side ran to thousands of columns, the settings below the
    metrics; past a few, each version is a row."""
    from runner.model_compare import SIDE_BY_SIDE, print_comparison

    n = SIDE_BY_SIDE + 1
    evaluation = {"dataset": "digits", "metrics": {"subset": "test", "n_items": 269}}
    models = [{"name": f"sklearn-digits-20261125-1200{i:02d}-ab{i:02d}", "status": "trained", "evaluation": evaluation,
               "overrides": [f"adapter.configuration.estimator.C={0.1 * (i + 1):.1f}", f"seed={i}", "dataset=digits"]}
              for i in range(n)]
    accuracy = [0.90 + 0.01 * i for i in range(n)]
    print_comparison({"models": models, "evaluated_on": None, "evaluated_alike": True,
                      "metrics": {"n_items": [269] * n, "accuracy": accuracy, "cohen_kappa": [0.8] * n},
                      "best": {"accuracy": [n - 1], "n_items": [], "cohen_kappa": []},
                      "configuration_differs": {"estimator.C": [round(0.1 * (i + 1), 1) for i in range(n)]}})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "versions sklearn-digits-20261125-... :"
    assert lines[1].split() == ["version", "status", "evaluated", "on", "C", "accuracy", "cohen_kappa", "run",
                                "overrides"]
    rows = [line.split() for line in lines[3:3 + n]]
    assert rows[0][:2] == ["...120000-ab00", "trained"] and rows[0][-4:-1] == ["0.1", "0.9000", "0.8000"]
    assert rows[-1][-5:] == ["0.6", "0.9500", "*", "0.8000", f"seed={n - 1}"]  # C has its column; dataset= is shared
    assert "settings: C = estimator.C" in lines and max(map(len, lines)) < 120


def test_a_version_left_in_training_by_a_killed_process_is_named_as_such(platform, digits, versions, capsys):
    """A training records its host and pid: once that process is gone, listing, show and check say so,
    and delete-model takes it without --force; one whose process runs is still refused."""
    import socket

    _base, v1, v2 = versions
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for version, pid in ((v1, dead.pid), (v2, os.getpid())):
        version.status = "training"
        version.metadata.setdefault("user", {}).setdefault("runner", {})["training"] = {
            "host": socket.gethostname(), "pid": pid, "started": "2026-11-25T12:00:00+00:00"}
        version.update()
    rows = {r["name"]: r for r in listed(platform, capsys, "models")}
    assert rows["digits-lr-v1"]["process_gone"] and not rows["digits-lr-v2"]["process_gone"]
    code, out, _err = store(platform, capsys, "models")
    assert ["digits-lr-v1", "training", "(process", "gone)", "digits"] in [line.split()[:5] for line in out.split("\n")]
    code, out, _err = store(platform, capsys, "show", "digits-lr-v1")
    assert "status          training (the process that trained it is gone: killed;" in out
    code, out, _err = store(platform, capsys, "check")
    assert "left in training: digits-lr-v1: status training, but the process that trained it is gone" in out
    code, _out, err = store(platform, capsys, "delete-model", "digits-lr-v2", "--yes")
    assert code == 2 and "status 'training', so a job may be using it now" in err  # this process: alive
    code, out, _err = store(platform, capsys, "delete-model", "digits-lr-v1", "--yes")
    assert code == 0 and "deleted 1 model(s)" in out


def test_an_export_removes_the_partial_folder_an_export_killed_outright_left(platform, digits, tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f".out.partial-{dead.pid}"  # as a kill -9 of an export to tmp_path/out leaves it
    (left / "items").mkdir(parents=True)
    code, out, _err = store(platform, capsys, "export", "digits", str(tmp_path / "out"), "--dir", "/test")
    assert code == 0 and (tmp_path / "out" / "json").is_dir(), out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # the killed one's is gone


def test_restore_imports_from_the_folder_a_datasets_files_moved_to(platform, tmp_path, capsys):
    for label in ("a", "b"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i + (label == "b") * 120, np.uint8)).save(
                tmp_path / "photos" / label / f"{i}.png")
    dataset = import_image_folder(platform, tmp_path / "photos", dataset_name="photos").dataset
    source = {"_target_": "runner.data.import_image_folder", "folder": str(tmp_path / "photos"),
              "dataset_name": "photos"}
    platform.record_import_source(dataset, source)  # as a run records it
    item = next(platform.iter_items(dataset, None))[0]
    os.unlink(platform.blobs.path(platform.store.item_blob(item.id)[0]))
    (tmp_path / "photos").rename(tmp_path / "moved")

    code, out, _err = store(platform, capsys, "check", "--restore")
    assert code == 1 and (f"restore: dataset 'photos' could not be imported again: no folder {tmp_path / 'photos'}; if "
                          "its files moved: check --restore --folder photos=<where they are now>") in out, out
    code, _out, err = store(platform, capsys, "check", "--folder", f"photos={tmp_path / 'moved'}")
    assert code == 2 and "add --restore" in err
    code, out, _err = store(platform, capsys, "check", "--restore", "--folder", f"photos={tmp_path / 'moved'}")
    assert code == 0 and "every record has its file" in out, out
    assert platform.import_source(dataset)["folder"] == str(tmp_path / "moved")  # the next restore reads it there
    assert platform.count_items(dataset, None) == 6


def test_a_versions_name_cut_short_is_offered_as_a_pattern_not_as_the_base_model(platform, digits, versions, capsys):
    for command in (("delete-model", "digits-lr-v", "--yes"), ("show", "digits-lr-v"),
                    ("compare", "digits-lr-v", "digits-lr")):
        code, _out, err = store(platform, capsys, *command)
        assert code == 2 and "no model named 'digits-lr-v' (did you mean 'digits-lr-v*'? it names the 2 models " \
                             "whose names start so)" in err, err
    code, _out, err = store(platform, capsys, "show", "digits-rl")
    assert code == 2 and "(did you mean digits-lr?)" in err
    assert len(platform.list_models()) == 3  # nothing deleted


def test_an_export_to_a_name_with_another_files_suffix_is_refused_not_made_a_folder(platform, digits, tmp_path, capsys):
    code, _out, err = store(platform, capsys, "export", "digits", str(tmp_path / "out.txt"), "--dir", "/test")
    assert code == 2 and "out.txt ends in .txt, a file's suffix, but an export writes a CSV (.csv)" in err
    assert "name it out.csv or out.json, or a folder" in err and not (tmp_path / "out.txt").exists()
    code, _out, _err = store(platform, capsys, "export", "digits", str(tmp_path / "out.txt"), "--dir", "/test",
                             "--format", "dataloop")  # asked for: a folder of that very name
    assert code == 0 and (tmp_path / "out.txt" / "json").is_dir()


def test_a_ranking_on_subsets_of_one_name_that_differ_says_so_without_offering_the_same_flag(platform, digits,
                                                                                             versions, capsys):
    _base, v1, v2 = versions
    fewer = {"filter": {"filename": "/test/digit-000*"}, "resource": "items"}
    v2.metadata["system"]["subsets"]["test"] = fewer  # its own "test": other items (another split)
    v2.update()
    SklearnImageClassifier(model_entity=v2).evaluate_model(v2, digits, filters=fewer)
    code, out, _ = store(platform, capsys, "models", "--sort", "accuracy", "--evaluated-on", "test")
    assert code == 0 and "note: this ranking mixes scores taken on different data or settings" in out
    assert "the versions' own test subsets differ (random splits of other seeds, or other datasets)" in out
    assert "--evaluated-on test ranks" not in out


def test_a_misspelt_dataset_of_an_export_gets_the_closest_name(platform, digits, tmp_path, capsys):
    code, _out, err = store(platform, capsys, "export", "digitz", str(tmp_path / "out"))
    assert code == 2 and "no dataset named 'digitz' (did you mean digits?) in the local platform at" in err
    assert "datasets here: digits" in err and not (tmp_path / "out").exists()


def test_help_and_argument_errors_import_no_heavy_library_and_a_listing_no_scikit_learn(platform, digits, tmp_path):
    """What a command imports (``python -X importtime``), not how long it takes: ``--help`` and a
    mistyped argument import neither dtlpy nor scikit-learn, pandas or Hydra; a listing, dtlpy (the
    platform's entities are its) but none of the metrics' libraries."""
    platform.create_model("digits-lr", digits, configuration={}, subsets=SUBSETS)
    env = {**os.environ, "DATALOOP_PATH": str(platform.root.parent)}

    def imported(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
        done = as_process(*args, env=env, cwd=tmp_path, options=("-X", "importtime"))
        return done, {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()
                      if line.startswith("import time:")}

    heavy = {"dtlpy", "sklearn", "pandas", "scipy", "numpy", "hydra", "matplotlib", "torch", "optuna"}
    for args, code in ((["--help"], 0), (["check", "--help"], 0), (["modles"], 2), (["models", "--status", "trianed"], 2),
                       (["export", "digits"], 2)):
        done, modules = imported(*args)
        assert done.returncode == code, done.stderr[-2000:]
        assert not modules & heavy, (args, modules & heavy)
    done, modules = imported("models")
    assert done.returncode == 0 and "digits-lr" in done.stdout, done.stderr[-2000:]
    assert "dtlpy" in modules and not modules & {"sklearn", "scipy", "hydra", "matplotlib", "torch", "optuna"}
