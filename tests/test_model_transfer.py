"""``python -m runner.store export-model`` / ``import-model``: a version trained in one store, moved to
another as one zip, evaluates there to the same metrics; what is not an export, or has nowhere to go,
is refused and stores nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from runner.data import import_digits
from runner.errors import AlreadyExistsError, DataImportError, NotFoundError
from runner.model_transfer import import_model
from runner.platform.local import LocalPlatform
from runner.store import main

TIMEOUT = 600


def dlrun(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATALOOP_PATH": str(cwd / "dl")}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def store_a(tmp_path_factory) -> tuple[Path, str]:
    """A store in which a real run trained and evaluated a version: (its platform folder, the version)."""
    cwd = tmp_path_factory.mktemp("a")
    out = dlrun(cwd, "pipeline=train_evaluate").stdout
    version = re.search(r"model version: (\S+) ", out).group(1)
    return cwd / "dl" / "local", version


@pytest.fixture
def store_b(tmp_path) -> LocalPlatform:
    """Another store, with digits imported."""
    platform = LocalPlatform(tmp_path / "b" / "dl" / "local")
    import_digits(platform)
    return platform


def store(root: Path, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def shown(root: Path, capsys, version: str) -> dict:
    code, out, err = store(root, capsys, "show", version, "--json")
    assert code == 0, err
    return json.loads(out)


def exported(store_a, tmp_path, capsys) -> Path:
    root, version = store_a
    dest = tmp_path / "out" / f"{version}.zip"
    code, out, err = store(root, capsys, "export-model", version, str(dest))
    assert code == 0, err
    assert f"wrote model {version}" in out and dest.is_file()
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no partial file left beside it
    return dest


def test_a_version_moves_to_another_store_and_evaluates_there_to_the_same_metrics(store_a, store_b, tmp_path,
                                                                                    capsys):
    root_a, version = store_a
    zip_path = exported(store_a, tmp_path, capsys)
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == ["artifacts/model.skops", "manifest.json"]

    code, out, err = store(store_b.root, capsys, "import-model", str(zip_path))
    assert code == 0, err
    assert f"imported model {version}" in out and "on dataset 'digits'" in out

    a, b = shown(root_a, capsys, version), shown(store_b.root, capsys, version)
    for key in ("status", "configuration", "labels", "input_type", "output_type", "subsets", "artifacts", "adapter",
                "dataset"):
        assert b[key] == a[key], key
    assert b["evaluation"]["metrics"] == a["evaluation"]["metrics"]  # its evaluation in A travels with it
    record = store_b.store.find_model(store_b.project.id, version)
    assert record["datasetId"] == store_b.find_dataset("digits").id
    assert record["metadata"]["user"]["runner"]["imported"]["name"] == version

    # evaluated in B by a real run, which takes the adapter from metadata.user.runner.adapter
    dlrun(tmp_path / "b", "pipeline=evaluate", f"model.name={version}")
    evaluations = store_b.store.evaluations(record["id"])
    assert len(evaluations) == 2  # the one imported and the one just taken
    in_b, in_a = evaluations[0][2], a["evaluation"]["metrics"]
    assert in_b["n_items"] == in_a["n_items"] and in_b["subset"] == in_a["subset"] == "test"
    for metric in ("accuracy", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro"):
        assert in_b[metric] == pytest.approx(in_a[metric], abs=1e-12), metric
    assert in_b["per_label"] == in_a["per_label"]


def test_an_import_refuses_a_taken_name_and_a_missing_dataset_and_stores_nothing(store_a, store_b, tmp_path,
                                                                                   capsys):
    _, version = store_a
    zip_path = exported(store_a, tmp_path, capsys)
    assert store(store_b.root, capsys, "import-model", str(zip_path))[0] == 0
    before = len(store_b.list_models())

    code, _, err = store(store_b.root, capsys, "import-model", str(zip_path))
    assert code == 2 and f"a model named {version!r} already exists" in err and "--name" in err
    with pytest.raises(AlreadyExistsError):
        import_model(store_b, zip_path)
    code, out, err = store(store_b.root, capsys, "import-model", str(zip_path), "--name", "moved")
    assert code == 0, err
    assert store_b.find_model("moved").configuration == store_b.find_model(version).configuration

    code, _, err = store(store_b.root, capsys, "import-model", str(zip_path), "--name", "other", "--dataset", "digitz")
    assert code == 2 and "no dataset named 'digitz'" in err and "--dataset" in err and "digits" in err
    # a store without the dataset it was trained on: refused, naming --dataset
    empty = LocalPlatform(tmp_path / "empty")
    with pytest.raises(NotFoundError, match="trained on dataset 'digits'") as refused:
        import_model(empty, zip_path)
    assert "--dataset" in refused.value.fix
    assert empty.list_models() == []
    assert [m.name for m in store_b.list_models()][before:] == ["moved"]


def test_an_import_refuses_a_file_that_is_not_an_export(store_a, store_b, tmp_path, capsys):
    zip_path = exported(store_a, tmp_path, capsys)
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    no_manifest = tmp_path / "no-manifest.zip"
    with zipfile.ZipFile(no_manifest, "w") as archive:
        archive.writestr("model.skops", b"weights")
    other_json = tmp_path / "other.zip"
    with zipfile.ZipFile(other_json, "w") as archive:
        archive.writestr("manifest.json", json.dumps({"format": "something-else"}))
    cut = tmp_path / "cut.zip"
    cut.write_bytes(zip_path.read_bytes()[: zip_path.stat().st_size // 2])
    tampered = tmp_path / "tampered.zip"  # a valid zip whose artifact is not the one the manifest lists
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(tampered, "w") as archive:
        archive.writestr("manifest.json", source.read("manifest.json"))
        archive.writestr("artifacts/model.skops", source.read("artifacts/model.skops")[:-1] + b"x")
    before = store_b.store.query("SELECT COUNT(*) FROM models")[0][0]
    for bad, why in ((junk, "not a readable zip"), (no_manifest, "holds no manifest.json"),
                     (other_json, "does not say format"), (cut, "not a readable zip"), (tampered, "damaged")):
        code, _, err = store(store_b.root, capsys, "import-model", str(bad))
        assert code == 2 and str(bad) in err and why in err, err
        with pytest.raises(DataImportError):
            import_model(store_b, bad)
    code, _, err = store(store_b.root, capsys, "import-model", str(tmp_path / "missing.zip"))
    assert code == 2 and "no file" in err
    assert store_b.store.query("SELECT COUNT(*) FROM models")[0][0] == before  # no record, half or whole


def test_an_export_refuses_a_version_without_artifacts_and_an_existing_file(store_a, tmp_path, capsys):
    root, version = store_a
    base = "sklearn-digits"  # the base model the run made: never trained, no artifacts
    code, _, err = store(root, capsys, "export-model", base, str(tmp_path / "base.zip"))
    assert code == 2 and f"model {base!r} has no artifacts" in err and "fix:" in err
    assert not (tmp_path / "base.zip").exists()

    dest = tmp_path / "taken.zip"
    dest.write_text("someone's file")
    code, _, err = store(root, capsys, "export-model", version, str(dest))
    assert code == 2 and "already exists" in err and "--force" in err
    assert dest.read_text() == "someone's file"
    assert store(root, capsys, "export-model", version, str(dest), "--force")[0] == 0
    with zipfile.ZipFile(dest) as archive:
        assert json.loads(archive.read("manifest.json"))["model"]["name"] == version
    code, _, err = store(root, capsys, "export-model", "no-such-version", str(tmp_path / "x.zip"))
    assert code == 2 and "no model named 'no-such-version'" in err
