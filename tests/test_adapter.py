"""The wrapper functions on the real local store, with real adapters and real images."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from adapters.sklearn_classifier import SklearnImageClassifier
from runner import BaseModelAdapter, bind_adapter_class
from runner.errors import ArtifactError, ConfigError, EmptySubsetError, MissingUserFunction, PredictionError
from tests.digits_subsets import SUBSETS, by_dir
from tests.sample_adapters import CentroidAdapter, FlakyAdapter, NoPredictAdapter, one_each


@pytest.fixture
def model(platform, digits):
    return platform.create_model("digits-lr", digits, configuration={"batch_size": 32}, subsets=SUBSETS)


def dataloop_path() -> Path:
    return Path(os.environ["DATALOOP_PATH"])



def _predicting(definitions):
    """A FlakyAdapter (failing no item) whose predict gives the ``n``-th item of each batch the
    annotations ``definitions(n)`` makes, as this model's predictions of confidence 0.5."""
    import dtlpy as dl

    class Predicting(FlakyAdapter):
        fail_names: set[str] = set()

        def predict(self, batch, **kwargs):
            collections = []
            for n, _ in enumerate(batch):
                collection = dl.AnnotationCollection()
                for definition in definitions(n):
                    collection.add(annotation_definition=definition,
                                   model_info={"name": self.model_entity.name, "confidence": 0.5})
                collections.append(collection)
            return collections

    return Predicting

def test_prepare_data_writes_the_documented_tree(platform, digits, model):
    adapter = SklearnImageClassifier(model_entity=model)
    root, data, output = map(Path, adapter.prepare_data(digits))
    # DATALOOP_PATH/model_data/<model.id>_<model.name>/<timestamp>/{output, datasets/<dataset.id>/<subset>/...}
    assert root.parent == dataloop_path() / "model_data" / f"{model.id}_{model.name}"
    assert data == root / "datasets" / digits.id and output == root / "output" and output.is_dir()
    assert sorted(p.name for p in data.iterdir()) == ["test", "train", "validation"]
    for subset in SUBSETS:
        expected = platform.count_items(digits, SUBSETS[subset])
        items = sorted(p.relative_to(data / subset / "items") for p in (data / subset / "items").rglob("*.png"))
        jsons = sorted(p.relative_to(data / subset / "json") for p in (data / subset / "json").rglob("*.json"))
        assert len(items) == expected > 0
        assert [p.with_suffix("") for p in items] == [p.with_suffix("") for p in jsons]
        assert all(p.parts[0] == subset for p in items)  # <subset>/items/<item dir>/<file>
    sample = json.loads(next((data / "test" / "json").rglob("*.json")).read_text())
    assert sample["dir"] == "/test" and sample["filename"].startswith("/test/")
    assert [a["type"] for a in sample["annotations"]] == ["class"]
    assert {"id", "datasetId", "metadata", "annotations"} <= set(sample)


def test_prepare_data_excludes_model_predictions_unless_asked(platform, digits, model):
    adapter = SklearnImageClassifier(model_entity=model)
    adapter.train_model(model)
    adapter.predict_dataset(digits, filters=SUBSETS["train"])
    _root, data, _out = adapter.prepare_data(digits)
    first = json.loads(next((Path(data) / "train" / "json").rglob("*.json")).read_text())
    assert len(first["annotations"]) == 1 and "model" not in first["annotations"][0]["metadata"].get("system", {})
    adapter.configuration["include_model_annotations"] = True
    _root, data, _out = adapter.prepare_data(digits)
    first = json.loads(next((Path(data) / "train" / "json").rglob("*.json")).read_text())
    assert len(first["annotations"]) == 2


def test_prepare_data_takes_the_items_dataloop_downloads(platform, digits, caplog):
    """As dtlpy's prepare_data (the annotation filter joined into the item filter): only items with an
    annotation of the model's output type; with include_background also items with no annotation at
    all; items annotated with other types never. None at all is an error that says why."""
    import dtlpy as dl

    items = [i for page in platform.iter_items(digits, SUBSETS["train"]) for i in page][:30]
    unannotated, boxed = items[:4], items[4:7]
    for item in unannotated + boxed:
        for annotation in item.annotations.list():
            annotation.delete()
    for item in boxed:
        collection = dl.AnnotationCollection()
        collection.add(annotation_definition=dl.Box(left=0, top=0, right=4, bottom=4, label="1"))
        item.annotations.upload(collection)
    train = {"filter": {"id": {"$in": [i.id for i in items]}}, "resource": "items"}
    model = platform.create_model("selection", digits, subsets={"train": train}, output_type="class")
    adapter = SklearnImageClassifier(model_entity=model)

    def written() -> set[str]:
        _root, data, _out = adapter.prepare_data(digits)
        return {json.loads(p.read_text())["id"] for p in (Path(data) / "train" / "json").rglob("*.json")}

    with caplog.at_level(logging.INFO, logger="runner"):
        assert written() == {i.id for i in items[7:]}
    # the items left out are counted, with the way to take in those with no annotation
    assert re.search(r"subset 'train': 23 items → \S+ \(7 of its 30 items left out: they have no annotation the "
                     r"model trains on; configuration\.include_background=true takes in those with none\)$",
                     caplog.text, re.MULTILINE), caplog.text
    adapter.configuration["include_background"] = True
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="runner"):
        assert written() == {i.id for i in items[7:] + unannotated}
    assert "(3 of its 30 items left out: they have no annotation the model trains on)" in caplog.text

    points = platform.create_model("points", digits, subsets={"train": train}, output_type="point")
    with pytest.raises(EmptySubsetError) as err:
        SklearnImageClassifier(model_entity=points).prepare_data(digits)
    assert "no item of subset 'train' has an annotation of model 'points''s output type 'point'" in str(err.value)
    assert "include_background=true" in str(err.value)


def test_the_download_filters_follow_dtlpys():
    from runner.adapter import downloaded, ground_truth_filter

    subset = {"filter": {"dir": "/train"}, "resource": "items"}
    annotations = ground_truth_filter("box", include_model_annotations=False)
    [annotated] = downloaded(subset, annotations, "box", include_background=False)
    assert annotated["filter"] == {"dir": "/train"} and annotated["join"]["filter"] == annotations["filter"]
    _annotated, background = downloaded(subset, annotations, "box", include_background=True)
    assert background == {"filter": {"$and": [{"dir": "/train"}, {"annotated": False}]}, "resource": "items"}
    for output_type in ("embedding", None):  # no annotation filter joined: every item of the subset
        assert downloaded(subset, annotations, output_type, include_background=False) == [subset]


def test_prepare_data_timestamps_never_collide(digits, model):
    adapter = SklearnImageClassifier(model_entity=model)
    roots = {adapter.prepare_data(digits, data_path=None)[0] for _ in range(3)}
    assert len(roots) == 3


def test_empty_subset_names_the_subset_and_its_filter(platform, digits):
    empty = platform.create_model("empty", digits, subsets={"train": by_dir("nowhere")})
    with pytest.raises(EmptySubsetError) as err:
        SklearnImageClassifier(model_entity=empty).prepare_data(digits)
    assert "'train'" in str(err.value) and "/nowhere" in str(err.value)


def test_train_evaluate_round_trip_with_sklearn(platform, digits, model, caplog):
    adapter = SklearnImageClassifier()
    with caplog.at_level(logging.DEBUG, logger="runner.adapter"):  # what debug=default shows of the wrappers
        trained = adapter.train_model(model)
        adapter.predict_items(next(platform.iter_items(digits, SUBSETS["test"], page_size=5)), batch_size=5)
    assert re.search(r"save_to_model digits-lr: 1 file\(s\), \d+ bytes, from ", caplog.text), caplog.text
    assert re.search(r"predict: a batch of 5 item\(s\) in \d+\.\d{3} s", caplog.text), caplog.text
    assert trained.status == "trained" and platform.get_model(model.id).status == "trained"
    assert [a.local_path for a in model.artifacts.list()] == ["model.skops"]
    metrics = adapter.evaluate_model(model, digits, filters=SUBSETS["test"])
    assert metrics["n_items"] == platform.count_items(digits, SUBSETS["test"])
    assert metrics["accuracy"] >= 0.95  # logistic regression's floor on the digits test subset
    assert platform.latest_evaluation(model)["accuracy"] == metrics["accuracy"]
    # a filter that matches nothing (a misspelt dir): said so, before anything is predicted or stored
    with pytest.raises(EmptySubsetError) as err:
        adapter.evaluate_model(model, digits, filters=by_dir("tset"))
    assert str(err.value).startswith("the filter matches no item of dataset 'digits': nothing to evaluate")
    assert "/tset" in str(err.value) and platform.latest_evaluation(model)["accuracy"] == metrics["accuracy"]
    # a fresh adapter loads the stored artifacts and predicts the same
    again = SklearnImageClassifier(model_entity=platform.get_model(model.id))
    items = next(platform.iter_items(digits, SUBSETS["test"], page_size=20))
    _, first = adapter.predict_items(items)
    _, second = again.predict_items(items)
    assert [a.label for a in first] == [a.label for a in second]


def test_load_from_model_places_artifacts_under_dataloop_path(model, digits):
    adapter = SklearnImageClassifier()
    adapter.train_model(model)
    adapter.load_from_model(model_entity=model)
    assert (dataloop_path() / "models" / model.name / "model.skops").is_file()
    assert adapter.model is not None


@pytest.mark.parametrize("name", ["../../elsewhere", "a/b", "..", ""])
def test_a_model_name_that_is_not_one_folder_is_refused_before_any_file_is_touched(platform, digits, name):
    outside = dataloop_path().parent / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("kept")
    model = platform.create_model(name, digits, configuration={"batch_size": 32}, subsets=SUBSETS)
    adapter = SklearnImageClassifier()
    with pytest.raises(ArtifactError, match="cannot name a folder"):
        adapter.train_model(model)  # load_from_model empties the artifacts folder first
    with pytest.raises(ArtifactError, match="cannot name a folder"):
        adapter.prepare_data(digits)
    assert (outside / "keep.txt").read_text() == "kept"
    assert not (dataloop_path() / "model_data").exists()


@pytest.mark.parametrize("batch_size", [0, -1, "many"])
def test_a_batch_size_below_1_is_refused_not_a_prediction_of_nothing(platform, digits, model, batch_size):
    adapter = SklearnImageClassifier()
    adapter.train_model(model)
    items = list(digits.items.list().all())[:5]
    with pytest.raises(ConfigError, match="batch size"):
        adapter.predict_items(items, batch_size=batch_size)
    model.configuration = {**model.configuration, "batch_size": batch_size}
    model.update()
    with pytest.raises(ConfigError, match="configuration.batch_size"):
        adapter.predict_items(items)
    model.configuration = {**model.configuration, "batch_size": "4"}  # a number kept as text still works
    model.update()
    assert len(adapter.predict_items(items)[1]) == 5


def test_predict_rerun_replaces_this_models_annotations(platform, digits, model):
    adapter = SklearnImageClassifier()
    adapter.train_model(model)
    ground_truth = platform.store.count_annotations(digits.id) - platform.store.count_annotations(digits.id, model.name)
    n_test = adapter.predict_dataset(digits, filters=SUBSETS["test"])
    adapter.predict_dataset(digits, filters=SUBSETS["test"])
    items, annotations = adapter.predict_items(next(platform.iter_items(digits, SUBSETS["test"], page_size=7)))
    assert len(items) == 7 == len(annotations)
    assert platform.store.count_annotations(digits.id, model.name) == n_test
    assert platform.store.count_annotations(digits.id) == ground_truth + n_test
    stamp = annotations[0].metadata["system"]["model"]
    assert stamp["name"] == model.name and stamp["model_id"] == model.id and 0 < stamp["confidence"] <= 1
    assert items[0].annotations.list()[-1].metadata["system"]["model"]["name"] == model.name


def test_a_failing_batch_leaves_the_others_stored(platform, digits):
    flaky = platform.create_model("flaky", digits, configuration={"batch_size": 5}, subsets=SUBSETS)
    items = [i for page in platform.iter_items(digits, SUBSETS["validation"]) for i in page][:40]
    FlakyAdapter.fail_names = {items[7].name, items[31].name}
    adapter = FlakyAdapter(model_entity=flaky)
    with pytest.raises(PredictionError) as err:
        adapter.predict_items(items)
    failed = set(err.value.failed)
    assert failed == {i.id for i in items[5:10]} | {i.id for i in items[30:35]}
    assert all(item_id in str(err.value) for item_id in failed)
    assert "cannot predict" in err.value.failed[items[7].id]
    # the first failure's place (the adapter's line) and traceback are kept for the run's log
    assert re.search(r"the first failure was raised at .*sample_adapters\.py:\d+ in predict", str(err.value))
    assert "Traceback (most recent call last)" in err.value.traceback_text and "cannot predict" in \
        err.value.traceback_text
    assert platform.store.count_annotations(digits.id, "flaky") == 30
    stored = platform.annotations_of(items, {"filter": {"metadata.system.model.name": "flaky"},
                                             "resource": "annotations"})
    assert {i for i, a in stored.items() if a} == {i.id for i in items} - failed


def _failed_at_predict(platform, digits, adapter_class, name: str, batch_size: int, count: int):
    """``predict_items`` of ``count`` validation items with ``adapter_class``, whose predict returns
    wrongly: (the items, the PredictionError), which must name that predict as the place."""
    import inspect

    model = platform.create_model(name, digits, configuration={"batch_size": batch_size}, subsets=SUBSETS)
    items = [i for page in platform.iter_items(digits, SUBSETS["validation"]) for i in page][:count]
    with pytest.raises(PredictionError) as err:
        adapter_class(model_entity=model).predict_items(items)
    line = inspect.getsourcelines(adapter_class.predict)[1]
    assert f"raised at {__file__}:{line} in {adapter_class.__name__}.predict (what it returned)" in str(err.value)
    return items, err


class OneShortAdapter(FlakyAdapter):
    fail_names: set[str] = set()  # FlakyAdapter's is set by another test

    def predict(self, batch, **kwargs):
        return super().predict(batch, **kwargs)[:-1]


def test_a_predict_that_returns_too_few_is_reported_at_the_adapters_predict_grouped_by_cause(platform, digits):
    """The check is the runner's; the mistake, and the place the error names, is the adapter's predict.
    Every item of a batch fails with one cause: the message shows each cause once, with its count."""
    items, err = _failed_at_predict(platform, digits, OneShortAdapter, "short", batch_size=8, count=20)
    message = str(err.value)
    assert len(err.value.failed) == 20 and platform.store.count_annotations(digits.id, "short") == 0
    eight = "ValueError: predict returned 7 results for a batch of 8 items; it must return one per item, in order"
    four = "ValueError: predict returned 3 results for a batch of 4 items; it must return one per item, in order"
    by_cause = [line.strip() for line in message.splitlines() if line.startswith("    ValueError")]
    assert by_cause == [f"{eight} (16 items): " + ", ".join(i.id for i in items[:10]) + " and 6 more",
                        f"{four} (4 items): " + ", ".join(i.id for i in items[16:])]
    assert err.value.every_failure().splitlines() == [f"{i.id}: {eight if n < 16 else four}" for n, i in enumerate(items)]


class AnnotationsNotCollections(FlakyAdapter):
    fail_names: set[str] = set()

    def predict(self, batch, **kwargs):
        return [next(iter(collection)) for collection in super().predict(batch, **kwargs)]


def test_a_predict_that_returns_annotations_not_collections_is_reported_at_the_adapters_predict(platform, digits):
    _items, err = _failed_at_predict(platform, digits, AnnotationsNotCollections, "bare", batch_size=4, count=8)
    message = str(err.value)
    assert ("TypeError: predict must return one dl.AnnotationCollection per item; its list held Annotation; put each "
            "item's annotations in a dl.AnnotationCollection (collection.add(...)) (8 items)") in message
    assert platform.store.count_annotations(digits.id, "bare") == 0


class RawLists(FlakyAdapter):
    fail_names: set[str] = set()

    def predict(self, batch, **kwargs):
        return [[[1.0, 2.0, 5.0, 6.0, 0.9, "3"]] for _ in batch]  # [x0, y0, x1, y1, score, label] per box


def test_a_predict_that_returns_raw_lists_per_item_is_reported_at_the_adapters_predict(platform, digits):
    _items, err = _failed_at_predict(platform, digits, RawLists, "raw", batch_size=4, count=8)
    message = str(err.value)
    assert ("TypeError: predict must return one dl.AnnotationCollection per item, holding dl.Annotation objects; an "
            "item's held list [1.0, 2.0, 5.0, 6.0, 0.9, '3']: build each with collection.add(annotation_definition="
            "dl.Box(...), model_info={...}) (8 items)") in message, message
    assert "_stamp" not in message
    assert platform.store.count_annotations(digits.id, "raw") == 0


class NoGradDicts(FlakyAdapter):
    fail_names: set[str] = set()

    @torch.no_grad()
    def predict(self, batch, **kwargs):
        return [{"label": "0", "confidence": 1.0} for _ in batch]  # dicts, not dl.AnnotationCollections


def test_a_decorated_predict_is_reported_at_the_adapters_own_line_not_the_decorators(platform, digits):
    """@torch.no_grad(), the usual decorator of a predict, wraps it in a function of torch's file: the
    place named is the adapter's file and line."""
    _items, err = _failed_at_predict(platform, digits, NoGradDicts, "nograd", batch_size=4, count=8)
    assert "its list held dict (8 items)" in str(err.value) and "torch" not in str(err.value)


class WidthAsRight(FlakyAdapter):
    """Passes a width and height as dl.Box's right and bottom, the usual mistake."""
    fail_names: set[str] = set()

    def predict(self, batch, **kwargs):
        import dtlpy as dl

        return one_each(batch, lambda: dl.Box(left=5, top=4, right=2, bottom=3, label="3"), self.model_entity.name)


def test_a_predicted_box_with_its_corners_the_wrong_way_round_fails_at_the_adapters_predict(platform, digits):
    _items, err = _failed_at_predict(platform, digits, WidthAsRight, "inverted", batch_size=4, count=8)
    assert ("ValueError: predict returned a box with right < left (left=5, top=4, right=2, bottom=3): dl.Box takes two "
            "corners, so right = left + width and bottom = top + height (8 items)") in str(err.value), str(err.value)
    assert platform.store.count_annotations(digits.id, "inverted") == 0


def test_predicted_boxes_wholly_outside_their_image_are_counted_in_one_warning(platform, digits, caplog):
    """Boxes in the resized input's pixels, or scaled for another size, miss the 8x8 digits: stored
    (they are the adapter's output) and named once, with their count, when the predict call ends."""
    import dtlpy as dl

    # each item: one box inside the image, one wholly outside it
    Scaled = _predicting(lambda n: [dl.Box(left=left, top=1, right=left + 6, bottom=7, label="3") for left in (1, 40 + n)])

    model = platform.create_model("scaled", digits, configuration={"batch_size": 4}, subsets=SUBSETS)
    items = [i for page in platform.iter_items(digits, SUBSETS["validation"]) for i in page][:10]
    with caplog.at_level(logging.WARNING, logger="runner"):
        Scaled(model_entity=model).predict_items(items)
    warnings = [r.getMessage() for r in caplog.records if "wholly outside" in r.getMessage()]
    assert warnings == [f"10 predicted boxes lie wholly outside their image (e.g. item {items[0].id}: (40, 1)-(46, 7) "
                        "on a 8x8 image), so they score as false positives: are the coordinates in the item's own "
                        "pixels, not the resized input's?"], warnings
    assert platform.store.count_annotations(digits.id, "scaled") == 20


def test_predictions_outside_the_models_labels_or_output_type_are_stored_and_named_in_one_warning(platform, digits,
                                                                                                   caplog):
    """Dataloop stores them, and so does predict; evaluate refuses them later, so the predict call ends
    with one warning per kind: the counts, the labels or types, a few items and the fix."""
    import dtlpy as dl

    OffModel = _predicting(lambda n: [dl.Classification(label="ten"), dl.Box(left=1, top=1, right=4, bottom=4, label="1"),
                                      dl.Classification(label="3")])

    model = platform.create_model("off", digits, configuration={"batch_size": 4}, subsets=SUBSETS)
    items = [i for page in platform.iter_items(digits, SUBSETS["validation"]) for i in page][:10]
    with caplog.at_level(logging.WARNING, logger="runner"):
        OffModel(model_entity=model).predict_items(items)
    examples = f"(items {items[0].id}, {items[1].id}, {items[2].id}, ...)"
    assert [r.getMessage() for r in caplog.records] == [
        f"10 predictions on 10 items have labels model 'off' does not have: 'ten' (10) {examples}; they are "
        "stored, as Dataloop stores them, but evaluate refuses them: make the adapter's predict use the model's labels "
        "(self.model_entity.labels; labels are case-sensitive), or add those labels to the model (model.labels)",
        f"10 predictions on 10 items have annotation types other than the output type of model 'off' ('class'): "
        f"'box' (10) {examples}; they are stored, as Dataloop stores them, but evaluate does not score them: make "
        "predict return annotations of the output type, or set the adapter's output_type (adapter.output_type=...) "
        "to the type predict returns"]
    assert platform.store.count_annotations(digits.id, "off") == 30


def test_one_collection_object_returned_for_every_item_is_stored_for_each(platform, digits):
    """As on Dataloop, where each item's upload makes new annotations: one collection object (with an
    empty polygon too) returned for every item of every batch gives each item its own records."""
    import dtlpy as dl

    model = platform.create_model("shared", digits, configuration={"batch_size": 4}, subsets=SUBSETS)
    items = [i for page in platform.iter_items(digits, SUBSETS["validation"]) for i in page][:10]

    class SharedCollection(FlakyAdapter):
        shared = None

        def predict(self, batch, **kwargs):
            if SharedCollection.shared is None:
                SharedCollection.shared = dl.AnnotationCollection()
                SharedCollection.shared.add(annotation_definition=dl.Classification(label="3"),
                                            model_info={"name": self.model_entity.name, "confidence": 0.5})
                SharedCollection.shared.add(annotation_definition=dl.Polygon(geo=np.zeros((0, 2)), label="3"),
                                            model_info={"name": self.model_entity.name, "confidence": 0.5})
            return [SharedCollection.shared for _ in batch]

    SharedCollection.fail_names = set()
    SharedCollection(model_entity=model).predict_items(items)
    stored = platform.annotations_of(items, {"filter": {"metadata.system.model.name": "shared"},
                                             "resource": "annotations"})
    assert all(len(stored[i.id]) == 2 for i in items)
    assert len({a["id"] for annotations in stored.values() for a in annotations}) == 2 * len(items)
    assert [a.type for a in items[3].annotations.list() if a.metadata["system"].get("model")] == ["class", "segment"]


def test_an_item_that_fails_to_prepare_fails_alone(platform, digits):
    """Items are prepared in chunks, one per thread: a failure stays with its item, and the rest of
    the chunk and of the batch are predicted and stored."""
    model = platform.create_model("unpreparable", digits, configuration={"batch_size": 8, "prepare_workers": 2},
                                  subsets=SUBSETS)
    items = [i for page in platform.iter_items(digits, SUBSETS["validation"]) for i in page][:24]
    bad = {items[1].name, items[2].name, items[13].name}

    class UnpreparableAdapter(FlakyAdapter):
        def prepare_item_func(self, item):
            if item.name in bad:
                raise OSError(f"cannot read {item.name}")
            return item.name

    UnpreparableAdapter.fail_names = set()
    adapter = UnpreparableAdapter(model_entity=model)
    assert adapter.batch_runner.prepare_workers == min(2, os.cpu_count() or 1)
    with pytest.raises(PredictionError) as err:
        adapter.predict_items(items)
    assert {i.name for i in items if i.id in err.value.failed} == bad
    assert all(cause.startswith("prepare_item_func: OSError: cannot read") for cause in err.value.failed.values())
    assert platform.store.count_annotations(digits.id, "unpreparable") == len(items) - len(bad)


def test_missing_user_function_names_class_and_function(platform, digits, model):
    adapter = NoPredictAdapter(model_entity=model)
    with pytest.raises(MissingUserFunction) as err:
        adapter.predict_items(next(platform.iter_items(digits, None, page_size=2)))
    assert "NoPredictAdapter" in str(err.value) and "'predict'" in str(err.value)
    with pytest.raises(MissingUserFunction, match="'train'"):
        adapter.train_model(model)


class LoadsWeightsAlways(SklearnImageClassifier):
    def load(self, local_path, **kwargs):
        with open(os.path.join(local_path, "weights.bin"), "rb"):
            pass


def test_a_load_that_wants_weights_a_new_model_lacks_says_so(platform, model):
    """The first training of a base model loads from an empty folder: a ``load`` that opens its weights
    there fails with the adapter's own error, noted with why the folder is empty."""
    adapter = LoadsWeightsAlways()
    with pytest.raises(FileNotFoundError) as err:
        adapter.train_model(model)
    assert err.value.__notes__ == [
        "model 'digits-lr' has no artifacts yet (a base model before its first training): load gets an empty "
        "folder then, and must build the model from its configuration"]
    assert platform.get_model(model.id).status == "failed"


def test_save_to_model_that_writes_nothing_keeps_the_previous_artifacts(platform, model, digits):
    adapter = SklearnImageClassifier()
    adapter.train_model(model)
    before = model.artifacts.list()

    class WritesNothing(SklearnImageClassifier):
        def save(self, local_path, **kwargs):
            pass

    with pytest.raises(ArtifactError, match="wrote no files, so model 'digits-lr' keeps its previous artifacts"):
        WritesNothing(model_entity=model).save_to_model()
    assert [a.local_path for a in model.artifacts.list()] == [a.local_path for a in before]
    fresh = platform.create_model("fresh", digits, subsets=SUBSETS)
    with pytest.raises(ArtifactError, match="so model 'fresh' has no artifacts") as err:
        WritesNothing(model_entity=fresh).save_to_model()
    assert err.value.exit_code == 1  # the adapter's mistake, as an exception raised in its code


def test_artifact_replacement_is_one_transaction(platform, model, tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "b.bin").write_bytes(b"b")
    platform.add_artifacts(model, {"a.bin": tmp_path / "a.bin", "b.bin": tmp_path / "b.bin"}, replace=True)
    good = platform.blobs.put_bytes(b"new")
    with pytest.raises(sqlite3.IntegrityError):  # the second row breaks NOT NULL: the whole replacement rolls back
        platform.store.set_artifacts(model.id, [("new.bin", good, 3), ("broken.bin", None, 0)], replace=True)
    assert [name for name, _b, _s in platform.store.list_artifacts(model.id)] == ["a.bin", "b.bin"]


def test_train_failure_saves_the_checkpoint_marks_failed_and_resumes(platform, digits, model):
    class CrashesAfterCheckpoint(SklearnImageClassifier):
        resumed_from = None

        def load(self, local_path, **kwargs):
            checkpoint = Path(local_path) / "checkpoint.txt"
            CrashesAfterCheckpoint.resumed_from = checkpoint.read_text() if checkpoint.exists() else None
            super().load(local_path)

        def train(self, data_path, output_path, **kwargs):
            (Path(output_path) / "checkpoint.txt").write_text("epoch-3")
            if CrashesAfterCheckpoint.resumed_from is None:
                raise RuntimeError("out of memory at epoch 4")
            super().train(data_path, output_path, **kwargs)

        def save(self, local_path, **kwargs):
            if self.model is not None:
                super().save(local_path)

    adapter = CrashesAfterCheckpoint()
    with pytest.raises(RuntimeError, match="epoch 4") as err:
        adapter.train_model(model)
    assert err.value.training_stopped == ("train", True)
    assert platform.get_model(model.id).status == "failed"
    assert [a.local_path for a in model.artifacts.list()] == ["checkpoint.txt"]
    adapter.train_model(platform.get_model(model.id))
    assert CrashesAfterCheckpoint.resumed_from == "epoch-3"
    assert platform.get_model(model.id).status == "trained"
    assert {a.local_path for a in model.artifacts.list()} == {"checkpoint.txt", "model.skops"}


def test_a_failed_training_calls_save_as_dtlpy_does_though_train_wrote_no_file(platform, digits, model, caplog):
    """A Dataloop adapter that writes its weights only in ``save`` keeps a checkpoint of a failed training."""
    class TrainedThenCrashes(SklearnImageClassifier):
        def train(self, data_path, output_path, **kwargs):
            super().train(data_path, output_path, **kwargs)
            raise RuntimeError("the validation step crashed")

    with pytest.raises(RuntimeError, match="validation step"):
        TrainedThenCrashes().train_model(model)
    assert platform.get_model(model.id).status == "failed"
    assert [a.local_path for a in model.artifacts.list()] == ["model.skops"]

    class CrashesBeforeItHasAModel(SklearnImageClassifier):
        def train(self, data_path, output_path, **kwargs):
            raise RuntimeError("no memory")

    fresh = platform.create_model("fresh", digits, configuration={"batch_size": 32}, subsets=SUBSETS)
    with caplog.at_level(logging.WARNING, logger="runner"), pytest.raises(RuntimeError, match="no memory") as err:
        CrashesBeforeItHasAModel().train_model(fresh)
    assert err.value.training_stopped == ("train", False)
    # its save has nothing to save: said as a warning, the training's error is the one raised
    assert "no checkpoint of the failed training was saved: ValueError: nothing to save" in caplog.text
    assert platform.get_model(fresh.id).status == "failed" and not fresh.artifacts.list()


class NoKwargsTrain(SklearnImageClassifier):
    def train(self, data_path, output_path):
        super().train(data_path, output_path)


def test_a_train_without_kwargs_is_refused_with_its_signature_before_the_model_changes(platform, model):
    """train_model calls train with on_epoch_end_callback, as dtlpy does: a train without **kwargs is
    named with its signature and the fix, before the status changes or anything is saved."""
    import inspect

    with pytest.raises(ConfigError) as err:
        NoKwargsTrain().train_model(model)
    assert err.value.what == (
        "NoKwargsTrain.train(self, data_path, output_path) cannot take the call train_model makes, train(data_path=..., "
        "output_path=..., on_epoch_end_callback=...): got an unexpected keyword argument 'on_epoch_end_callback'")
    assert err.value.where == f"{__file__}:{inspect.getsourcelines(NoKwargsTrain.train)[1]} in NoKwargsTrain.train"
    assert "train(self, data_path, output_path, **kwargs)" in err.value.fix
    stored = platform.get_model(model.id)
    assert stored.status == "created" and not stored.artifacts.list()


def test_a_failed_training_says_where_it_stopped_and_saves_no_checkpoint_outside_train(platform, digits, model,
                                                                                       caplog):
    """``training_stopped``: (the function the training stopped in, whether a checkpoint was saved). A
    load that fails comes before train: nothing is saved. A save that writes nothing after a train
    that ended is not called again, nor said to lose a failed training's checkpoint."""
    class LoadFails(SklearnImageClassifier):
        def load(self, local_path, **kwargs):
            raise RuntimeError("corrupted header")

    class SavesNothing(SklearnImageClassifier):
        saves = 0

        def save(self, local_path, **kwargs):
            SavesNothing.saves += 1

    with caplog.at_level(logging.WARNING, logger="runner"):
        with pytest.raises(RuntimeError, match="corrupted header") as err:
            LoadFails().train_model(model)
        assert err.value.training_stopped == ("load_from_model", False)
        with pytest.raises(ArtifactError, match="wrote no files") as err:
            SavesNothing().train_model(model)
    assert err.value.training_stopped == ("save_to_model", False) and SavesNothing.saves == 1
    assert "no checkpoint" not in caplog.text
    # (the failed load saved nothing: a second training starts from scratch, not from a checkpoint)
    assert "model 'digits-lr' failed before, and has no artifacts: training starts from scratch" in caplog.text
    assert platform.get_model(model.id).status == "failed" and not model.artifacts.list()


def test_cleanup_deletes_the_local_data_copy(digits, model):
    adapter = SklearnImageClassifier()
    adapter.train_model(model, cleanup=True)
    # the model's folder goes with its only copy; one holding another training's copy stays
    assert not (dataloop_path() / "model_data" / f"{model.id}_{model.name}").exists()
    other = dataloop_path() / "model_data" / f"{model.id}_{model.name}" / "20260101-000000-000000"
    other.mkdir(parents=True)
    adapter.train_model(model, cleanup=True)
    assert [p.name for p in other.parent.iterdir()] == [other.name]


def test_binding_names_the_wrapper_functions_a_class_overrides(caplog):
    """Their code would not run here (the runner's wrapper functions replace them): a warning says so."""

    class WithOverrides(CentroidAdapter):
        def prepare_data(self, dataset, *args, **kwargs):
            return super().prepare_data(dataset, *args, **kwargs)

        def predict_items(self, items, *args, **kwargs):
            return super().predict_items(items, *args, **kwargs)

    with caplog.at_level("WARNING", logger="runner.adapter"):
        bound = bind_adapter_class(WithOverrides)
        bind_adapter_class(CentroidAdapter)
    assert bound.predict_items is BaseModelAdapter.predict_items
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("test_binding_names_the_wrapper_functions_a_class_overrides.<locals>.WithOverrides "
                              "overrides the wrapper function(s) predict_items, prepare_data; the runner runs its own")


def test_an_unbound_dataloop_adapter_is_told_to_bind(platform, digits):
    """Instantiated as is, dtlpy's own wrapper functions run and reach for the servers: the error names
    the fix."""
    from runner.errors import UnsupportedOperation

    model = platform.create_model("unbound", digits, subsets=SUBSETS)
    with pytest.raises(UnsupportedOperation) as err:
        CentroidAdapter(model_entity=model).train_model(model)
    assert "runner.bind_adapter_class(MyAdapter)" in str(err.value)
    with pytest.raises(UnsupportedOperation) as err:  # not from a dtlpy wrapper: the usual fix only
        model.dataset.items.update(filters=dl_filters())
    assert "bind_adapter_class" not in str(err.value)


def dl_filters():
    import dtlpy as dl

    return dl.Filters()


def test_dataloop_style_adapter_runs_unchanged_through_train_predict_evaluate(platform, digits):
    model = platform.create_model("centroids", digits, configuration={"batch_size": 16}, subsets=SUBSETS)
    adapter_class = bind_adapter_class(CentroidAdapter)
    assert issubclass(adapter_class, CentroidAdapter) and adapter_class.__name__ == "CentroidAdapter"
    assert adapter_class.predict is CentroidAdapter.predict  # its own user functions
    assert adapter_class.predict_items is BaseModelAdapter.predict_items  # our wrapper functions
    adapter = adapter_class()
    adapter.train_model(model)
    stored = platform.get_model(model.id)
    assert stored.status == "trained" and stored.configuration["classes_without_samples"] == []
    assert "pixel_scale" not in stored.configuration  # reading with a default does not write it
    assert [s.figure for s in stored.metrics.list()] == ["classes seen"]
    metrics = adapter.evaluate_model(stored, digits, filters=SUBSETS["test"])  # dl's evaluate → ours
    assert metrics["accuracy"] > 0.8
    items, annotations = adapter.predict_items(next(platform.iter_items(digits, SUBSETS["validation"], 10)))
    assert len(annotations) == 10 and {a.type for a in annotations} == {"class"}


def test_embed_items_and_dataset_store_vectors_for_a_nearest_neighbour_query(platform, digits):
    model = platform.create_model("embedder", digits, subsets=SUBSETS)
    adapter = bind_adapter_class(CentroidAdapter)()
    adapter.load_from_model(model_entity=model)
    count = adapter.embed_dataset(digits, filters=SUBSETS["train"])
    assert count == platform.count_items(digits, SUBSETS["train"])
    feature_set = model.feature_set
    ids, matrix = feature_set.features.vectors()
    assert matrix.shape == (count, 64) and len(ids) == count
    query_item = next(platform.iter_items(digits, SUBSETS["train"], 1))[0]
    query = np.asarray(query_item.download(to_array=True), dtype=np.float32).ravel() / 255.0
    nearest = ids[int(np.argmin(np.linalg.norm(matrix - query, axis=1)))]
    assert nearest == query_item.id
    _items, vectors = adapter.embed_items([query_item])
    assert np.allclose(vectors[0], query)


def test_failures_that_differ_only_in_their_items_path_or_id_are_one_cause():
    """A mistake that fails every item names each item's own file in its message: the error groups
    them as one cause, and ``.failed`` keeps each message whole."""
    from runner.errors import PredictionError

    failed = {f"6b0682151e96fbf55d38ce5{i}": f"UnidentifiedImageError: cannot identify image file "
                                             f"<_io.BufferedReader name='/tmp/blobs/{i}{i}/{i}{i}ab'>" for i in range(3)}
    failed["6b0682151e96fbf55d38ce59"] = "ValueError: item 6b0682151e96fbf55d38ce59 has no pixels"
    err = PredictionError("predict_items", failed, total=4)
    assert "    UnidentifiedImageError: cannot identify image file <_io.BufferedReader name='...'> (3 items): " \
           "6b0682151e96fbf55d38ce50, 6b0682151e96fbf55d38ce51, 6b0682151e96fbf55d38ce52" in str(err)
    assert "    ValueError: item <id> has no pixels (1 item): 6b0682151e96fbf55d38ce59" in str(err)
    assert err.failed == failed
    # a batch-wide cause counts its own batch: batches of other sizes are still one cause
    batches = {f"6b0682151e96fbf55d38ce6{i}": f"VectorsRefused: {n} of the batch's {n} feature vectors have 16 values"
               for i, n in enumerate((20, 23, 29))}
    assert "    VectorsRefused: <n> of the batch's <m> feature vectors have 16 values (3 items): " in \
        str(PredictionError("embed_dataset", batches, total=3))


@pytest.mark.parametrize("setting, says", [
    ({"grayscale": "no"}, "model configuration 'grayscale' must be true or false, got 'no'"),
    ({"image_size": 8.7}, "model configuration 'image_size' must be an integer >= 1, got 8.7"),
    ({"estimator": "sklearn.svm.SVC"}, "estimator must be a mapping such as {_target_: "
                                       "sklearn.linear_model.LogisticRegression, max_iter: 1000}, got 'sklearn.svm.SVC'")])
def test_a_mistyped_setting_of_the_sklearn_adapter_is_refused_as_it_loads(platform, digits, setting, says):
    """Not a silent bool('no') or int(8.7): the load a training starts with names the key."""
    model = platform.create_model("typo", digits, configuration=setting, subsets=SUBSETS)
    with pytest.raises(ValueError) as refused:
        SklearnImageClassifier(model_entity=model).load_from_model(model)
    assert str(refused.value) == says


def test_saving_and_loading_a_scikit_learn_model_leaves_torch_unimported_and_importable(tmp_path):
    """skops lists scikit-learn's estimators by importing its packages, torch's array-API shim among
    them: the sklearn adapter's jobs would load torch (seconds) for nothing."""
    script = ("import sys\n"
              "import numpy as np\n"
              "from sklearn.linear_model import LogisticRegression\n"
              "from adapters.sklearn_classifier import dump_skops, load_trusted_skops\n"
              "model = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])\n"
              f"dump_skops(model, {str(tmp_path / 'm.skops')!r})\n"
              f"again = load_trusted_skops({str(tmp_path / 'm.skops')!r})\n"
              "print('torch' in sys.modules, again.predict(np.eye(4)).tolist())\n"
              "import torch\n"
              "import sklearn.externals.array_api_compat.torch\n"
              "print(torch.ones(2).sum().item())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=Path(__file__).parent.parent,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False [0, 1, 0, 1]", "2.0"]
