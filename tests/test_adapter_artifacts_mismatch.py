"""A model version loaded with an adapter other than the one that trained it fails in ``load``, naming the
artifacts folder, what it holds and the fix; a version with no artifacts yet still loads as untrained. Real
local store, real digits, real scikit-learn and PyTorch models."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from adapters.pca_embedder import PcaEmbedder
from adapters.shapes_detector import ShapesDetector
from adapters.sklearn_classifier import SklearnImageClassifier
from adapters.torch_classifier import TorchImageClassifier
from tests.digits_subsets import SUBSETS

torch = pytest.importorskip("torch")




def make_model(platform, digits, name: str, **configuration):
    return platform.create_model(name, digits, configuration={"batch_size": 64, "seed": 0, **configuration},
                                 subsets=SUBSETS, input_type="image", output_type="class")


@pytest.fixture
def torch_version(platform, digits):
    model = make_model(platform, digits, "digits-cnn", epochs=1)
    TorchImageClassifier().train_model(model)
    return platform.get_model(model.id)


@pytest.fixture
def sklearn_version(platform, digits):
    model = make_model(platform, digits, "digits-lr")
    SklearnImageClassifier().train_model(model)
    return platform.get_model(model.id)


def artifacts_folder(model) -> Path:
    return Path(os.environ["DATALOOP_PATH"]) / "models" / model.name


@pytest.mark.parametrize(("adapter_class", "trained_by", "wanted", "found"), [
    (SklearnImageClassifier, "torch_version", "model.skops", "last.pt, model.json, weights.pt"),
    (TorchImageClassifier, "sklearn_version", "weights.pt, model.json or last.pt", "model.skops"),
    (PcaEmbedder, "sklearn_version", "pca.npz", "model.skops"),
    (ShapesDetector, "sklearn_version", "shapes_classifier.skops", "model.skops"),
], ids=["sklearn-on-torch", "torch-on-sklearn", "pca-on-sklearn", "shapes-on-sklearn"])
def test_an_adapter_on_another_adapters_artifacts_fails_in_load(request, platform, digits, adapter_class,
                                                                trained_by, wanted, found):
    version = request.getfixturevalue(trained_by)
    expected = (f"model artifacts in {artifacts_folder(version)} have no {wanted} (found: {found}): "
                "the version was made by another adapter? choose the adapter that trained it (adapter=...)")
    with pytest.raises(ValueError) as raised:
        adapter_class(model_entity=version)
    assert str(raised.value) == expected

    predictions_before = platform.store.count_annotations(digits.id, version.name)
    with pytest.raises(ValueError, match=re.escape(expected)):  # before any batch is predicted
        adapter_class().evaluate_model(version, digits, filters=SUBSETS["test"])
    assert platform.store.count_annotations(digits.id, version.name) == predictions_before
    assert platform.latest_evaluation(version) is None
    assert platform.get_model(version.id).status == "trained"


def test_the_right_adapter_still_loads_each_version(torch_version, sklearn_version):
    assert SklearnImageClassifier(model_entity=sklearn_version).model is not None
    assert TorchImageClassifier(model_entity=torch_version).model.labels == [str(d) for d in range(10)]


@pytest.mark.parametrize(("adapter_class", "configuration", "artifacts"), [
    (SklearnImageClassifier, {}, {"model.skops"}),
    (TorchImageClassifier, {"epochs": 1}, {"weights.pt", "model.json", "last.pt"})])
def test_a_fresh_model_loads_untrained_and_trains(platform, digits, adapter_class, configuration, artifacts):
    model = make_model(platform, digits, "fresh", **configuration)
    assert model.artifacts.list() == []
    adapter = adapter_class(model_entity=model)  # loads an empty artifacts folder: no complaint
    assert not any(artifacts_folder(model).iterdir())
    if adapter_class is SklearnImageClassifier:
        assert adapter.model is None  # not trained yet
    else:
        assert adapter.model.labels == [str(d) for d in range(10)] and adapter._resume is None  # a fresh network
    adapter.train_model(model)
    trained = platform.get_model(model.id)
    assert trained.status == "trained"
    assert {a.local_path for a in trained.artifacts.list()} == artifacts
    assert adapter_class(model_entity=trained).model is not None


def test_hidden_files_alone_do_not_count_as_artifacts(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    adapter = SklearnImageClassifier()
    adapter.load(str(tmp_path))
    assert adapter.model is None


def test_training_over_foreign_artifacts_warns_and_starts_from_scratch(platform, digits, torch_version, caplog):
    """train_model loads before it trains, and a failed training leaves only what its output_path held (a
    checkpoint, not this adapter's saved files): there load warns instead, and the training replaces them."""
    version = platform.clone_model(torch_version, "digits-cnn-then-lr")
    with caplog.at_level(logging.WARNING, logger="adapters.sklearn_classifier"):
        SklearnImageClassifier().train_model(version)
    warning = "have no model.skops (found: last.pt, model.json, weights.pt)"
    assert any(warning in record.getMessage() and "training starts from scratch" in record.getMessage()
               for record in caplog.records)
    assert [a.local_path for a in platform.get_model(version.id).artifacts.list()] == ["model.skops"]
