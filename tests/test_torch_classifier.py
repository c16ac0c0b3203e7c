"""The PyTorch CNN adapter on the real local store with the real digits: train, checkpoints, resume,
save/load, predict, evaluate, embed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from adapters.torch_classifier import CHECKPOINT_FILE, TorchImageClassifier  # imports torch only when used
from tests.digits_subsets import SUBSETS

torch = pytest.importorskip("torch")


EPOCHS = 6  # enough for >= 0.97 test accuracy on the digits; the shipped default is 15


class EpochRecorder:
    """A ``progress`` for ``train_model``: the runner's epoch callback reports every epoch to it."""

    def __init__(self):
        self.epochs: list[tuple[int, int]] = []

    def update(self, progress=None, message=None):
        done, total = map(int, re.fullmatch(r"finished epoch (\d+)/(\d+)", message).groups())
        self.epochs.append((done - 1, total))  # the callback's (i_epoch, n_epoch)


def make_model(platform, digits, name: str, **configuration):
    configuration = {"epochs": EPOCHS, "batch_size": 32, "seed": 0, **configuration}
    return platform.create_model(name, digits, configuration=configuration, subsets=SUBSETS,
                                 input_type="image", output_type="class")


def artifacts(platform, model, folder: Path) -> Path:
    platform.download_artifacts(model, folder)
    return folder


def test_train_save_load_predict_evaluate_embed_round_trip(platform, digits, tmp_path):
    model = make_model(platform, digits, "digits-cnn")
    adapter = TorchImageClassifier()
    recorder = EpochRecorder()
    adapter.train_model(model, progress=recorder)
    stored = platform.get_model(model.id)
    assert stored.status == "trained"
    assert recorder.epochs == [(epoch, EPOCHS) for epoch in range(EPOCHS)]  # the callback, once per epoch
    assert "learning_rate" not in stored.configuration  # reading with a default does not write it

    samples = stored.metrics.list()
    for figure, legend in [("loss", "train"), ("loss", "validation"), ("accuracy", "validation")]:
        assert sorted(s.x for s in samples if (s.figure, s.legend) == (figure, legend)) == list(range(EPOCHS))
    validation_accuracy = [s.y for s in samples if (s.figure, s.legend) == ("accuracy", "validation")]
    assert max(validation_accuracy) >= 0.95

    assert {a.local_path for a in stored.artifacts.list()} == {CHECKPOINT_FILE, "weights.pt", "model.json"}
    folder = artifacts(platform, stored, tmp_path / "artifacts")
    description = json.loads((folder / "model.json").read_text())
    assert description["labels"] == [str(d) for d in range(10)] and description["interrupted"] is False
    assert description["epochs_trained"] == EPOCHS
    assert description["architecture"] == {"input_size": 16, "channels": 1, "conv_channels": [16, 32],
                                           "hidden_size": 64}
    checkpoint = torch.load(folder / CHECKPOINT_FILE, weights_only=True)  # tensors and plain containers only
    assert checkpoint["epoch"] == EPOCHS - 1 and {"model_state", "optimizer_state"} <= set(checkpoint)
    assert set(torch.load(folder / "weights.pt", weights_only=True)) == set(adapter.model.state_dict())

    # the trained adapter and a fresh one loading the stored artifacts predict the same
    test_items = [item for page in platform.iter_items(digits, SUBSETS["test"]) for item in page]
    _items, trained = adapter.predict_items(test_items)
    fresh = TorchImageClassifier(model_entity=platform.get_model(model.id))
    _items, reloaded = fresh.predict_items(test_items)
    assert [a.label for a in reloaded] == [a.label for a in trained] and len(trained) == len(test_items)
    assert np.allclose([a.metadata["user"]["model"]["confidence"] for a in reloaded],
                       [a.metadata["user"]["model"]["confidence"] for a in trained])
    scores = reloaded[0].metadata["user"]["model"]["scores"]
    assert set(scores) == set(description["labels"]) and sum(scores.values()) == pytest.approx(1.0)

    metrics = fresh.evaluate_model(stored, digits, filters=SUBSETS["test"])
    assert metrics["n_items"] == len(test_items)
    assert metrics["accuracy"] >= 0.95
    assert metrics["top_2_accuracy"] >= metrics["accuracy"] and "roc_auc_ovr_macro" in metrics

    items, vectors = fresh.embed_items(test_items[:10])
    assert len(vectors) == 10 and {np.asarray(v).shape for v in vectors} == {(64,)}
    ids, matrix = stored.feature_set.features.vectors()
    assert matrix.shape == (10, 64) and set(ids) == {item.id for item in items}


class CrashesInEpoch(TorchImageClassifier):
    """Crashes after a few optimizer steps of epoch ``crash_epoch`` (0-based)."""

    crash_epoch = 2

    def _run_epoch(self, epoch, batches, optimizer):
        if epoch != self.crash_epoch:
            return super()._run_epoch(epoch, batches, optimizer)

        def crashing():
            for index, batch in enumerate(batches):
                if index == 3:
                    raise RuntimeError(f"simulated crash in epoch {epoch}")
                yield batch

        return super()._run_epoch(epoch, crashing(), optimizer)


def test_a_crashed_training_resumes_from_its_last_checkpoint(platform, digits, tmp_path):
    crash = CrashesInEpoch.crash_epoch
    model = make_model(platform, digits, "digits-cnn-crash")
    with pytest.raises(RuntimeError, match=f"simulated crash in epoch {crash}"):
        CrashesInEpoch().train_model(model)
    failed = platform.get_model(model.id)
    assert failed.status == "failed"
    folder = artifacts(platform, failed, tmp_path / "failed")
    assert torch.load(folder / CHECKPOINT_FILE, weights_only=True)["epoch"] == crash - 1
    assert json.loads((folder / "model.json").read_text())["interrupted"] is True

    recorder = EpochRecorder()
    TorchImageClassifier().train_model(failed, progress=recorder)
    resumed = platform.get_model(model.id)
    assert resumed.status == "trained"
    assert recorder.epochs == [(epoch, EPOCHS) for epoch in range(crash, EPOCHS)]  # total epochs unchanged
    losses = sorted(s.x for s in resumed.metrics.list() if (s.figure, s.legend) == ("loss", "train"))
    assert losses == list(range(EPOCHS))  # each epoch reported once across the two runs

    # the resumed run ends with the same weights as a run that never crashed: the optimizer state and
    # every epoch's shuffling were restored
    reference = make_model(platform, digits, "digits-cnn-reference")
    TorchImageClassifier().train_model(reference)
    resumed_weights = torch.load(artifacts(platform, resumed, tmp_path / "resumed") / "weights.pt", weights_only=True)
    reference_weights = torch.load(artifacts(platform, reference, tmp_path / "reference") / "weights.pt",
                                   weights_only=True)
    assert all(torch.equal(resumed_weights[k], reference_weights[k]) for k in reference_weights)

    metrics = TorchImageClassifier().evaluate_model(resumed, digits, filters=SUBSETS["test"])
    assert metrics["accuracy"] >= 0.95


def test_configuration_untrained_network_and_odd_images(platform, digits):
    model = make_model(platform, digits, "digits-cnn-rgb", channels=3, input_size=12, conv_channels=[4],
                       hidden_size=8, optimizer="sgd", learning_rate=0.05, epochs=1)
    adapter = TorchImageClassifier(model_entity=model)  # no artifacts: an untrained network for the labels
    assert adapter.model.labels == model.labels and adapter.model.architecture["channels"] == 3
    rgb, gray = np.zeros((30, 20, 3), np.uint8), np.full((5, 7, 1), 200, np.uint8)
    collections = adapter.predict([rgb, gray])
    assert len(collections) == 2 and all(len(c.annotations) == 1 for c in collections)
    assert [len(v) for v in adapter.embed([rgb, gray])] == [8, 8]

    recorder = EpochRecorder()
    adapter.train_model(model, progress=recorder)  # sgd, one epoch
    assert recorder.epochs == [(0, 1)] and platform.get_model(model.id).status == "trained"

    for key, value, message in [("optimizer", "rmsprop", "'optimizer' must be one of"),
                                ("conv_channels", [], "'conv_channels' must be a non-empty list"),
                                ("device", "cuda:7", "CUDA is not available") if not torch.cuda.is_available()
                                else ("epochs", 0, "'epochs' must be an integer >= 1")]:
        bad = make_model(platform, digits, f"digits-cnn-bad-{key}", **{key: value})
        with pytest.raises(ValueError, match=message):
            TorchImageClassifier().train_model(bad)
        assert platform.get_model(bad.id).status == "failed" and not bad.artifacts.list()
