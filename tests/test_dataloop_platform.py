"""The dtlpy-backed platform. It uses dtlpy entity methods only, so here it runs over the local
platform's entities (which serve those methods offline): the same wrapper functions, the same results."""

from __future__ import annotations

import dtlpy as dl
import numpy as np
import pytest

from adapters.sklearn_classifier import SklearnImageClassifier
from runner import bind_adapter_class
from runner.errors import ConfigError
from runner.platform.dataloop import DataloopPlatform
from tests.digits_subsets import SUBSETS
from tests.sample_adapters import CentroidAdapter


def _version(platform, dataset, over: DataloopPlatform, name: str):
    base = platform.create_model(f"{name}-base", dataset, configuration={"batch_size": 32}, subsets=SUBSETS)
    return over.clone_model(base, name, configuration={"batch_size": 32})


def test_train_evaluate_through_dtlpy_entities_matches_the_local_platform(platform, digits):
    over = DataloopPlatform(project=platform.project)
    remote = _version(platform, digits, over, "via-dtlpy")
    local = _version(platform, digits, over, "via-local")

    adapter = SklearnImageClassifier()
    adapter.platform = over
    adapter.train_model(remote)
    assert platform.get_model(remote.id).status == "trained"
    assert [a.local_path for a in remote.artifacts.list()] == ["model.skops"]
    metrics = adapter.evaluate_model(remote, digits, filters=SUBSETS["test"])
    assert over.latest_evaluation(remote)["accuracy"] == metrics["accuracy"]

    reference = SklearnImageClassifier()
    reference.train_model(local)
    assert reference.evaluate_model(local, digits, filters=SUBSETS["test"])["accuracy"] == metrics["accuracy"] >= 0.95

    n_test = over.count_items(digits, SUBSETS["test"])
    adapter.predict_dataset(digits, filters=SUBSETS["test"])  # a rerun replaces, never duplicates
    assert platform.store.count_annotations(digits.id, remote.name) == n_test
    assert over.fingerprint(digits, SUBSETS["test"]) == over.fingerprint(digits, SUBSETS["test"])


def test_replacing_artifacts_and_storing_features(platform, digits, tmp_path):
    over = DataloopPlatform(project=platform.project)
    model = _version(platform, digits, over, "features")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(b"1")
    (tmp_path / "a" / "sub").mkdir()
    (tmp_path / "a" / "sub" / "c.json").write_text("{}")
    over.add_artifacts(model, {"w.bin": tmp_path / "a" / "w.bin", "sub/c.json": tmp_path / "a" / "sub" / "c.json"},
                       replace=True)
    assert sorted(a.local_path for a in model.artifacts.list()) == ["sub/c.json", "w.bin"]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.bin").write_bytes(b"2")
    over.add_artifacts(model, {"x.bin": tmp_path / "b" / "x.bin"}, replace=True)
    assert [a.local_path for a in model.artifacts.list()] == ["x.bin"]

    adapter = bind_adapter_class(CentroidAdapter)()
    adapter.platform = over
    adapter.load_from_model(model_entity=model)
    count = adapter.embed_dataset(digits, filters=SUBSETS["validation"])
    ids, matrix = model.feature_set.features.vectors()
    assert count == len(ids) == over.count_items(digits, SUBSETS["validation"]) and matrix.shape[1] == 64
    query = next(over.iter_items(digits, SUBSETS["validation"], page_size=1))[0]
    vector = np.asarray(query.download(to_array=True), dtype=np.float32).ravel() / 255.0
    assert ids[int(np.argmin(np.linalg.norm(matrix - vector, axis=1)))] == query.id


def test_without_a_login_it_says_how_to_log_in():
    if not dl.token_expired():
        pytest.skip("this machine holds a valid Dataloop token")
    with pytest.raises(ConfigError, match="dl.login"):
        DataloopPlatform("any-project")


def test_the_command_line_without_a_login_exits_with_the_fix(tmp_path):
    import os
    import subprocess
    import sys

    if not dl.token_expired():
        pytest.skip("this machine holds a valid Dataloop token")
    done = subprocess.run([sys.executable, "-m", "runner", "platform=dataloop", "platform.project=demo"], cwd=tmp_path,
                          env={**os.environ, "DATALOOP_PATH": str(tmp_path / "dl")}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "error: dtlpy is not logged in to Dataloop" in done.stderr and "dl.login()" in done.stderr
    assert not (tmp_path / "dl" / "local").exists()
