"""``python -m runner.store check`` and the copies beside a store: which folders are a store's own
(``<folder>/models``, ``<folder>/model_data`` of a store at ``<folder>/local``, never another
store's), what the store and they take on disk, the clean-ups (asked first where they take copies),
compacting ``platform.db``, and the versions whose dataset is gone."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
import time

import pytest

from adapters.sklearn_classifier import SklearnImageClassifier
from runner.errors import RunnerError
from runner.platform.local import LocalPlatform
from runner.platform.local.compaction import LOCK_WAIT_S, compact
from runner.store import main
from tests.digits_subsets import SUBSETS
from tests.store_commands import Terminal, store


@pytest.fixture
def platform(home_platform):
    return home_platform  # with the copies a run makes beside it


@pytest.fixture
def version(platform, digits):
    """A trained version: its training data copied under model_data/, its artifacts loaded under models/."""
    base = platform.create_model("digits-lr", digits, configuration={"batch_size": 64}, subsets=SUBSETS)
    version = platform.clone_model(base, "digits-lr-v1", configuration={
        "estimator": {"_target_": "sklearn.linear_model.LogisticRegression", "max_iter": 200}})
    adapter = SklearnImageClassifier(model_entity=version)
    adapter.train_model(version)
    adapter.load_from_model(platform.get_model(version.id))
    return platform.get_model(version.id)


def copies_of(model, home) -> tuple:
    """Its copies under ``home``: ``models/<name>/`` and ``model_data/<id>_<name>/``."""
    return home / "models" / model.name, home / "model_data" / f"{model.id}_{model.name}"


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def on_disk(folder) -> int:
    return sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file())


def test_a_copy_of_the_store_deletes_and_checks_its_own_copies_never_the_originals(platform, version, dataloop_home,
                                                                                   tmp_path, capsys):
    shutil.copytree(dataloop_home, tmp_path / "dl2", symlinks=True)  # cp -a: the store and the copies beside it
    original, copied = copies_of(version, dataloop_home), copies_of(version, tmp_path / "dl2")
    assert all(f.is_dir() and any(f.iterdir()) for f in (*original, *copied))

    assert main(["--root", str(tmp_path / "dl2" / "local"), "check"]) == 0
    out = capsys.readouterr().out
    assert f"in {tmp_path / 'dl2' / 'model_data'}, which no later run reads" in out and str(dataloop_home) not in out
    assert main(["--root", str(tmp_path / "dl2" / "local"), "delete-model", version.name, "--yes"]) == 0
    assert not any(f.exists() for f in copied)
    assert all(f.is_dir() and any(f.iterdir()) for f in original)  # DATALOOP_PATH's store still has its version
    assert platform.find_model(version.name) is not None

    # a store in a folder of another name has no copies of its own: nothing beside it, nor under
    # DATALOOP_PATH (the store there may hold the same version), is taken, and it says so
    shutil.copytree(platform.root, tmp_path / "elsewhere" / "store")
    other = ["--root", str(tmp_path / "elsewhere" / "store")]
    assert main([*other, "check", "--clean-model-data", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "has no model_data/ of its own (its folder is not named 'local'" in err and "nothing was removed" in err
    assert main([*other, "check"]) == 0
    assert "no models/ or model_data/ copies of its own" in capsys.readouterr().out
    assert main([*other, "delete-model", version.name, "--yes"]) == 0
    assert "their local copies (models/, model_data/) were left" in capsys.readouterr().out
    assert all(f.is_dir() and any(f.iterdir()) for f in original)


def test_clean_model_data_asks_first_with_the_number_of_copies_and_their_size(platform, version, dataloop_home,
                                                                              capsys, monkeypatch):
    copy = copies_of(version, dataloop_home)[1]
    size = on_disk(copy)
    unused = platform.blobs.put_bytes(b"bytes no record uses")
    code, _out, err = store(platform, capsys, "check", "--clean", "--clean-model-data")
    assert code == 2 and "needs confirmation, and there is no terminal to ask on" in err and "add --yes" in err
    assert any(copy.iterdir()) and os.path.exists(platform.blobs.path(unused))  # refused before anything was done

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, out, _err = store(platform, capsys, "check", "--clean-model-data")
    assert code == 1 and "nothing deleted" in out and any(copy.iterdir())
    assert f"remove 1 training data copy ({megabytes(size)} on disk) from {dataloop_home / 'model_data'}?" in out
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, _err = store(platform, capsys, "check", "--clean-model-data")
    assert code == 0 and f"model_data: removed 1 training data copy ({megabytes(size)} on disk)" in out
    assert not copy.exists()


def test_check_says_what_takes_space_and_cleans_the_model_folders_a_stopped_delete_left(platform, version,
                                                                                        dataloop_home, capsys):
    folder, data = copies_of(version, dataloop_home)
    code, out, _err = store(platform, capsys, "check")
    database = sum(os.path.getsize(f"{platform.root / 'platform.db'}{s}") for s in ("", "-wal")
                   if os.path.exists(f"{platform.root / 'platform.db'}{s}"))
    assert code == 0 and (f"space on disk: platform.db {megabytes(database)}, blobs/ "
                          f"{megabytes(on_disk(platform.root / 'blobs'))}, models/ "
                          f"{megabytes(on_disk(dataloop_home / 'models'))}, model_data/ {megabytes(on_disk(data))} "
                          f"(1 training data copy) in {dataloop_home}") in out, out

    # a delete killed after its transaction, before it removed the version's folders
    platform.store.delete_models(platform.project.id, [version.id])
    an_hour_ago = time.time() - 3700
    os.utime(folder, (an_hour_ago, an_hour_ago))
    fresh = dataloop_home / "models" / "loading-now"  # a job of another platform sharing the folder may be loading
    fresh.mkdir()
    code, out, _err = store(platform, capsys, "check")
    assert (f"models: 1 folder(s) ({megabytes(on_disk(folder))} on disk) in {dataloop_home / 'models'} of models no "
            f"longer in the store (a delete stopped half-way): {version.name}; --clean removes them") in out, out
    code, out, _err = store(platform, capsys, "check", "--clean")
    assert "models: removed 1 folder(s)" in out and not folder.exists() and fresh.is_dir()
    assert data.is_dir()  # a training data copy goes with --clean-model-data, asked


def test_compact_gives_the_pages_of_deleted_records_back_and_waits_for_no_writer(platform, digits, capsys):
    kept = platform.create_dataset("kept")
    platform.delete_dataset(digits)  # the pages of its items and annotations are free now
    code, out, _err = store(platform, capsys, "check")
    free = re.search(r"platform\.db (\d+\.\d) MB \((\d+\.\d) MB of it free pages: --compact gives them back\)", out)
    assert code == 0 and free and float(free.group(2)) > 1, out

    # another process writing, once the command has opened the store (opening it waits for the lock)
    held = sqlite3.connect(platform.root / "platform.db", isolation_level=None)
    held.execute("BEGIN IMMEDIATE")
    size = os.path.getsize(platform.root / "platform.db")
    started = time.monotonic()
    with pytest.raises(RunnerError, match="not compacted: another process held the store's write lock") as refused:
        compact(platform.store)
    assert "nothing was changed" in refused.value.fix and time.monotonic() - started >= LOCK_WAIT_S
    assert os.path.getsize(platform.root / "platform.db") == size
    held.execute("ROLLBACK")
    held.close()

    size = os.path.getsize(platform.root / "platform.db") + os.path.getsize(platform.root / "platform.db-wal")
    code, out, _err = store(platform, capsys, "check", "--compact")
    done = re.search(r"platform\.db: compacted from (\d+\.\d) MB to (\d+\.\d) MB\n", out)
    assert code == 0 and done and done.group(1) == megabytes(size).split()[0], out
    after = os.path.getsize(platform.root / "platform.db")
    assert float(done.group(2)) == round(after / 1e6, 1) < float(free.group(1)) - 1
    assert os.path.getsize(platform.root / "platform.db-wal") == 0  # checkpointed: the file itself shrank
    reopened = LocalPlatform(platform.root)
    assert [d.name for d in reopened.list_datasets()] == [kept.name]
    code, out, _err = store(platform, capsys, "check")
    assert "free pages" not in out


def test_check_names_the_versions_whose_dataset_is_gone_with_the_delete_that_removes_them(platform, digits, capsys):
    platform.create_model("digits-lr", digits, configuration={}, subsets=SUBSETS)
    platform.store.delete_dataset(digits.id)  # a delete of the dataset that raced the model's making: it stays
    code, out, _err = store(platform, capsys, "check")
    assert code == 1, out
    assert "dataset gone: 1 model version(s) name a dataset no longer in the store" in out
    assert f"  digits-lr: dataset {digits.id}\n  python -m runner.store delete-model digits-lr\n" in out
    assert "every record has its file" not in out
    code, _out, err = store(platform, capsys, "delete-model", "digits-lr", "--yes")  # the fix it gives works
    assert code == 0, err
    code, out, _err = store(platform, capsys, "check", "--clean")
    assert code == 0 and "dataset gone" not in out
