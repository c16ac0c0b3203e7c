"""The default evaluate over stored annotations: classification and COCO boxes, and bad input."""

from __future__ import annotations

import contextlib
import io
import logging

import dtlpy as dl
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from runner import BaseModelAdapter
from runner.errors import RunnerError
from runner.evaluation import evaluate
from runner.metrics import COCO_SCALARS, polygon_mask
from runner.platform.local.store import new_id, now_iso

LABELS = ["cat", "dog", "bird"]


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def _annotation(definition, item_id: str, dataset_id: str, model: dl.Model | None = None,
                confidence: float | None = None, scores: dict | None = None) -> dict:
    data = dl.Annotation.new(annotation_definition=definition).to_json()
    data.update(id=new_id(), itemId=item_id, datasetId=dataset_id, createdAt=now_iso())
    data.pop("item", None)
    data.pop("dataset", None)
    if model is not None:
        user = {"name": model.name, "model_id": model.id}
        if confidence is not None:
            user["confidence"] = confidence
        if scores is not None:
            user["scores"] = scores
        data["metadata"]["user"] = {"model": user}
        data["metadata"]["system"]["model"] = {"name": model.name, "model_id": model.id, "confidence": confidence}
    return data


@pytest.fixture
def images(platform):
    dataset = platform.create_dataset("boxes", labels=LABELS)
    blob = platform.blobs.put_bytes(_png(200, 160))
    rows = [{"id": new_id(), "dataset_id": dataset.id, "filename": f"/test/{i:03d}.png", "dir": "/test",
             "name": f"{i:03d}.png", "mimetype": "image/png", "blob": blob,
             "metadata": {"system": {"mimetype": "image/png", "width": 200, "height": 160}}} for i in range(40)]
    platform.store.insert_items(rows)
    return dataset, rows


class Oracle(BaseModelAdapter):
    """Predicts from each item's own ground truth: ``from_truth`` turns one annotation into predictions."""

    def load(self, local_path, **kwargs):
        self.rng = np.random.default_rng(7)

    def prepare_item_func(self, item):
        return item

    def from_truth(self, truth) -> list[tuple]:
        raise NotImplementedError

    def extra(self) -> list[tuple]:
        return []

    def predict(self, batch, **kwargs):
        out = []
        for item in batch:
            collection = dl.AnnotationCollection()
            truths = [a for a in item.annotations.list() if not a.metadata.get("system", {}).get("model")]
            for definition, confidence in [p for t in truths for p in self.from_truth(t)] + self.extra():
                collection.add(annotation_definition=definition,
                               model_info={"name": self.model_entity.name, "confidence": confidence})
            out.append(collection)
        return out


class JitteredOracle(Oracle):
    """Predicts each ground-truth box shifted a little, misses some, adds false positives."""

    def from_truth(self, truth):
        if self.rng.random() < 0.15:
            return []
        dx, dy = self.rng.normal(0, 3, 2)
        box = dl.Box(left=truth.left + dx, top=truth.top + dy, right=truth.right + dx, bottom=truth.bottom + dy,
                     label=truth.label)
        return [(box, float(np.round(self.rng.random(), 2)))]  # ties on purpose

    def extra(self):
        boxes = []
        for _ in range(int(self.rng.integers(0, 3))):
            x, y = self.rng.uniform(0, 150, 2)
            boxes.append((dl.Box(left=x, top=y, right=x + 30, bottom=y + 25, label=str(self.rng.choice(LABELS))), 0.5))
        return boxes


def _pycocotools_stats(platform, dataset, model) -> np.ndarray:
    """COCOeval (bbox) on the annotations as stored, one image per item in store order."""
    items = [i for page in platform.iter_items(dataset, None) for i in page]
    stored = platform.annotations_of(items, {"filter": {"type": "box"}, "resource": "annotations"})
    gt, dt = [], []
    for image_id, item in enumerate(items, start=1):
        for a in stored[item.id]:
            (x1, y1), (x2, y2) = ((p["x"], p["y"]) for p in a["coordinates"])
            box = [min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1)]
            category = LABELS.index(a["label"]) + 1
            stamp = a["metadata"].get("system", {}).get("model")
            if stamp:
                dt.append({"image_id": image_id, "category_id": category, "bbox": box,
                           "score": stamp["confidence"]})
            else:
                area = ((a["metadata"].get("user") or {}).get("coco") or {}).get("area", box[2] * box[3])
                gt.append({"id": len(gt) + 1, "image_id": image_id, "category_id": category, "bbox": box,
                           "area": area, "iscrowd": 0})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": [{"id": i + 1} for i in range(len(items))], "annotations": gt,
                           "categories": [{"id": k + 1, "name": n} for k, n in enumerate(LABELS)]}
        coco_gt.createIndex()
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(dt), "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


@pytest.mark.parametrize("coco_area", [False, True])
def test_box_evaluation_through_the_store_equals_pycocotools(platform, images, coco_area):
    """With ``coco_area`` the ground truth carries a COCO file's ``area`` (an object's mask is smaller
    than its box), which decides the small / medium / large ranges as in COCOeval."""
    dataset, rows = images
    rng = np.random.default_rng(3)
    truth = []
    for row in rows[:-3]:  # the last three items have no ground truth
        for _ in range(int(rng.integers(1, 5))):
            x, y = rng.uniform(0, 140, 2)
            w, h = rng.uniform(8, 60, 2)
            truth.append(_annotation(dl.Box(left=x, top=y, right=x + w, bottom=y + h, label=str(rng.choice(LABELS))),
                                     row["id"], dataset.id))
            if coco_area:
                truth[-1]["metadata"]["user"] = {"coco": {"area": float(w * h * rng.uniform(0.2, 0.9))}}
    platform.store.insert_annotations(truth)
    model = platform.create_model("oracle", dataset, output_type="box", subsets={})
    metrics = JitteredOracle().evaluate_model(model, dataset)
    ours = np.array([metrics[k] for k in COCO_SCALARS])
    np.testing.assert_allclose(ours, _pycocotools_stats(platform, dataset, model), rtol=0, atol=1e-9)
    assert 0.3 < metrics["AP50"] <= 1.0
    assert metrics["problems"]["items without ground truth (their predictions count as false positives)"]["count"] == 3
    assert set(metrics["pr_curves"]) == set(LABELS) and len(metrics["pr_curves"]["cat"]["recall"]) == 101
    assert platform.latest_evaluation(model)["AP"] == metrics["AP"]


def test_malformed_box_coordinates_are_counted_with_examples(platform, images):
    dataset, rows = images
    good = _annotation(dl.Box(left=1, top=1, right=20, bottom=20, label="cat"), rows[0]["id"], dataset.id)
    bad = _annotation(dl.Box(left=1, top=1, right=20, bottom=20, label="cat"), rows[1]["id"], dataset.id)
    bad["coordinates"] = [{"x": 1, "y": 1}]
    platform.store.insert_annotations([good, bad])
    model = platform.create_model("m", dataset, output_type="box", subsets={})
    with pytest.raises(RunnerError) as err:
        evaluate(platform, model, dataset, None)
    assert "malformed box coordinates: 1 (" in str(err.value) and rows[1]["id"] in str(err.value)


@pytest.fixture
def classified(platform, images):
    dataset, rows = images
    truth = [_annotation(dl.Classification(label=LABELS[i % 3]), row["id"], dataset.id) for i, row in enumerate(rows)]
    platform.store.insert_annotations(truth[:-2])  # two items without ground truth
    model = platform.create_model("clf", dataset, output_type="class", subsets={})
    return dataset, rows, model


def test_classification_reads_per_class_scores_for_top_k_and_roc_auc(platform, classified):
    dataset, rows, model = classified
    predictions = []
    for i, row in enumerate(rows):
        true = LABELS[i % 3]
        guess = true if i % 4 else LABELS[(i + 1) % 3]
        scores = {label: 0.6 if label == guess else 0.3 if label == true else 0.1 for label in LABELS}
        predictions.append(_annotation(dl.Classification(label=guess), row["id"], dataset.id, model, 0.6, scores))
    platform.store.insert_annotations(predictions)
    metrics = evaluate(platform, model, dataset, None)
    assert metrics["n_items"] == 38
    assert metrics["accuracy"] == pytest.approx(np.mean([i % 4 != 0 for i in range(38)]))
    assert metrics["top_2_accuracy"] == 1.0  # the true label always holds the second score
    assert 0.5 < metrics["roc_auc_ovr_macro"] <= 1.0
    assert metrics["problems"]["items without ground truth"]["count"] == 2


def test_a_zero_confidence_is_a_score_not_a_missing_one(platform, classified):
    dataset, rows, model = classified
    predictions = []
    for i, row in enumerate(rows):
        predictions.append(_annotation(dl.Classification(label=LABELS[(i + 1) % 3]), row["id"], dataset.id, model, 0.0))
        predictions.append(_annotation(dl.Classification(label=LABELS[i % 3]), row["id"], dataset.id, model, 0.9))
    platform.store.insert_annotations(predictions)
    assert evaluate(platform, model, dataset, None)["accuracy"] == 1.0


def test_extra_metrics_are_scored_over_the_models_labels(platform, classified):
    """An extra scikit-learn score that takes ``labels`` gets the model's: with items left unpredicted
    ("<none>") and a label never predicted, its F1 macro equals the standard one; without the labels
    scikit-learn would average over "<none>" too."""
    from functools import partial

    from sklearn.metrics import f1_score

    dataset, rows, model = classified
    predictions = [_annotation(dl.Classification(label="cat" if LABELS[i % 3] == "cat" else "dog"), row["id"],
                               dataset.id, model, 0.8) for i, row in enumerate(rows) if i % 5]  # some left out
    platform.store.insert_annotations(predictions)
    extra = {"f1_sk": partial(f1_score, average="macro", zero_division=0), "f1_two_labels":
             partial(f1_score, average="macro", zero_division=0, labels=["cat", "dog"]),
             "confusion_matrix": partial(f1_score, average="macro")}  # a standard output's name: left out
    metrics = evaluate(platform, model, dataset, None, extra)
    assert isinstance(metrics["confusion_matrix"], dict)
    assert metrics["f1_sk"] == pytest.approx(metrics["f1_macro"])
    assert metrics["f1_two_labels"] != pytest.approx(metrics["f1_macro"])  # labels given: kept as given
    assert metrics["problems"]["items without a prediction (counted wrong)"]["count"] > 0


def test_a_libraries_warning_in_a_metric_is_logged_naming_the_metric(platform, classified, caplog):
    """scikit-learn warns (UserWarning, printed raw with its own file and line) when every item has one
    label: the run logs it once, naming the metric, and no raw warning escapes."""
    import warnings

    from sklearn.metrics import matthews_corrcoef

    dataset, rows, model = classified
    cat = [row for i, row in enumerate(rows) if LABELS[i % 3] == "cat"]
    platform.store.insert_annotations([_annotation(dl.Classification(label="cat"), row["id"], dataset.id, model, 0.8)
                                       for row in cat])
    only_cats = {"filter": {"id": {"$in": [row["id"] for row in cat]}}}
    with warnings.catch_warnings(record=True) as raw, caplog.at_level(logging.WARNING, logger="runner.evaluation"):
        warnings.simplefilter("always")
        metrics = evaluate(platform, model, dataset, only_cats, {"mcc": matthews_corrcoef})
    assert metrics["mcc"] == 0.0 and metrics["accuracy"] == 1.0
    assert not raw
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("metrics.scores.mcc: ")]
    assert len(logged) == 1 and "single label" in logged[0]


def test_ground_truth_of_labels_outside_the_model_is_left_out_with_a_warning(platform, images, caplog):
    dataset, rows = images
    model = platform.create_model("two-labels", dataset, labels=LABELS[:2], output_type="class", subsets={})
    annotations = []
    for i, row in enumerate(rows):
        annotations.append(_annotation(dl.Classification(label=LABELS[i % 3]), row["id"], dataset.id))
        annotations.append(_annotation(dl.Classification(label=LABELS[i % 2]), row["id"], dataset.id, model, 0.8))
    platform.store.insert_annotations(annotations)
    outside = sum(1 for i in range(len(rows)) if i % 3 == 2)
    with caplog.at_level(logging.WARNING, logger="runner.evaluation"):
        metrics = evaluate(platform, model, dataset, None)
    assert metrics["n_items"] == len(rows) - outside
    assert metrics["problems"]["ground truth with labels the model does not have"]["count"] == outside
    assert "ground truth with labels the model does not have" in caplog.text


def test_an_item_with_several_ground_truth_classes_is_named_as_scored_on_its_first(platform, classified, caplog):
    dataset, rows, model = classified
    platform.store.insert_annotations([_annotation(dl.Classification(label=LABELS[1]), rows[0]["id"], dataset.id)])
    platform.store.insert_annotations([_annotation(dl.Classification(label=LABELS[i % 3]), row["id"], dataset.id,
                                                   model, 0.9) for i, row in enumerate(rows)])
    with caplog.at_level(logging.WARNING, logger="runner.evaluation"):
        metrics = evaluate(platform, model, dataset, None)
    kind = "items with several ground-truth classes (scored on the first stored)"
    assert metrics["problems"][kind]["count"] == 1 and rows[0]["id"] in caplog.text
    assert metrics["accuracy"] == 1.0  # item 0's first class, LABELS[0], is its prediction's


def test_ground_truth_boxes_of_labels_outside_the_model_are_left_out(platform, images):
    dataset, rows = images
    model = platform.create_model("cats", dataset, labels=["cat"], output_type="box", subsets={})
    annotations = []
    for row in rows:
        for label, left in (("cat", 1), ("dog", 100)):
            box = dl.Box(left=left, top=1, right=left + 40, bottom=40, label=label)
            annotations.append(_annotation(box, row["id"], dataset.id))
        cat = dl.Box(left=1, top=1, right=41, bottom=40, label="cat")
        annotations.append(_annotation(cat, row["id"], dataset.id, model, 0.9))
    platform.store.insert_annotations(annotations)
    metrics = evaluate(platform, model, dataset, None)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["n_truth"] == len(rows)
    assert metrics["problems"]["ground truth with labels the model does not have"]["count"] == len(rows)


def test_predicted_boxes_with_unknown_labels_name_the_labels_the_closest_and_each_item_once(platform, images):
    dataset, rows = images
    model = platform.create_model("cased", dataset, output_type="box", subsets={})
    annotations = []
    for row in rows[:3]:
        annotations.append(_annotation(dl.Box(left=1, top=1, right=40, bottom=40, label="cat"), row["id"], dataset.id))
        for left in (1, 50):  # two such predictions on each item
            annotations.append(_annotation(dl.Box(left=left, top=1, right=left + 40, bottom=40, label="Cat"), row["id"],
                                           dataset.id, model, 0.9))
    platform.store.insert_annotations(annotations)
    with pytest.raises(RunnerError) as err:
        evaluate(platform, model, dataset, None)
    ids = ", ".join(row["id"] for row in rows[:3])
    assert err.value.what == ("predictions with labels the model does not have: 'Cat' (did you mean 'cat'?); "
                              f"6 such prediction(s), on items {ids}"), err.value.what
    assert err.value.exit_code == 1  # the adapter's mistake, not the configuration's
    assert "labels are case-sensitive" in err.value.fix and "boxes need" not in err.value.fix


def test_predictions_of_another_type_than_the_output_type_are_not_scored_in_silence(platform, classified, caplog):
    """A class model whose predict returns boxes: an error when it stored none of its type, else the
    others are left out with a warning and counted under problems."""
    dataset, rows, model = classified
    box = dl.Box(left=1, top=1, right=20, bottom=20, label="cat")
    platform.store.insert_annotations([_annotation(box, row["id"], dataset.id, model, 0.9) for row in rows[:5]])
    with pytest.raises(RunnerError) as err:
        evaluate(platform, model, dataset, None)
    assert "stored predictions of type 'box', not of its output type 'class', so none can be scored: 5" in \
        str(err.value)
    assert "adapter.output_type" in str(err.value)
    assert err.value.exit_code == 1  # the adapter's predict's mistake, as an unknown label is

    platform.store.insert_annotations([_annotation(dl.Classification(label=LABELS[i % 3]), row["id"], dataset.id,
                                                   model, 0.9) for i, row in enumerate(rows)])
    with caplog.at_level(logging.WARNING, logger="runner.evaluation"):
        metrics = evaluate(platform, model, dataset, None)
    assert metrics["accuracy"] == 1.0
    assert metrics["problems"]["predictions of another type than class (left out)"]["count"] == 5
    assert "predictions of another type than class (left out): 5" in caplog.text


def test_a_prediction_with_an_unknown_label_is_an_error_on_an_item_left_out_too(platform, images):
    """The item's ground truth is outside the model's labels (left out with a warning), but the model
    predicted a label it does not have: still an error, not a dropped prediction."""
    dataset, rows = images
    model = platform.create_model("two", dataset, labels=LABELS[:2], output_type="class", subsets={})
    platform.store.insert_annotations(
        [_annotation(dl.Classification(label=LABELS[i % 3]), row["id"], dataset.id) for i, row in enumerate(rows)]
        + [_annotation(dl.Classification(label="zebra" if i % 3 == 2 else LABELS[i % 3]), row["id"], dataset.id,
                       model, 0.9) for i, row in enumerate(rows)])
    with pytest.raises(RunnerError, match="predictions with labels the model does not have: 'zebra'; "):
        evaluate(platform, model, dataset, None)


def test_missing_confidence_counts_as_one_with_one_warning(platform, classified, caplog):
    dataset, rows, model = classified
    platform.store.insert_annotations([_annotation(dl.Classification(label=LABELS[i % 3]), row["id"], dataset.id,
                                                   model) for i, row in enumerate(rows)])
    with caplog.at_level(logging.WARNING, logger="runner.evaluation"):
        metrics = evaluate(platform, model, dataset, None)
    assert metrics["accuracy"] == 1.0
    warnings = [r.getMessage() for r in caplog.records if "without confidence" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("predictions without confidence (taken as 1.0): 38 (")


def test_predictions_with_unknown_labels_are_an_error_naming_items(platform, classified):
    dataset, rows, model = classified
    platform.store.insert_annotations([_annotation(dl.Classification(label="zebra"), row["id"], dataset.id, model, 0.9)
                                       for row in rows[:7]])
    with pytest.raises(RunnerError) as err:
        evaluate(platform, model, dataset, None)
    message = str(err.value)
    assert "labels the model does not have: 'zebra'; 7 such prediction(s), on items " in message
    assert rows[0]["id"] in message and "..." in message


class PolygonOracle(Oracle):
    """Predicts each ground-truth polygon shifted by ``shift`` pixels."""

    shift = 0.0

    def from_truth(self, truth):
        if truth.type != "segment":
            return []
        return [(dl.Polygon(geo=np.asarray(truth.geo, dtype=float) + self.shift, label=truth.label), 0.9)]


@pytest.mark.parametrize("shift", [0.0, 6.0])
def test_segmentation_evaluation_through_the_store(platform, images, shift):
    dataset, rows = images
    rng = np.random.default_rng(5)
    truth = []
    for row in rows[:10]:
        x, y = rng.uniform(10, 120, 2)
        polygon = np.array([[x, y], [x + 40, y], [x + 40, y + 30], [x, y + 30]])
        truth.append(_annotation(dl.Polygon(geo=polygon, label=str(rng.choice(LABELS))), row["id"], dataset.id))
    platform.store.insert_annotations(truth)
    model = platform.create_model("seg", dataset, output_type="segment", subsets={})
    PolygonOracle.shift = shift
    filters = {"filter": {"id": {"$in": [row["id"] for row in rows[:10]]}}, "resource": "items"}
    metrics = PolygonOracle().evaluate_model(model, dataset, filters=filters)
    assert metrics["n_items"] == 10
    if shift == 0:
        assert metrics["mean_iou"] == 1.0 and metrics["pixel_accuracy"] == 1.0
        assert (metrics["instance_tp"], metrics["instance_fp"], metrics["instance_fn"]) == (10, 0, 0)
    else:
        assert 0.5 < metrics["mean_iou"] < 1.0
        overlap = (41 - 6) * (31 - 6) / (2 * 41 * 31 - (41 - 6) * (31 - 6))  # PIL fills the outline: 41x31 pixels
        assert metrics["instance_mean_match_iou"] == pytest.approx(overlap, abs=1e-9)


def test_a_model_label_named_background_is_scored_beside_the_unannotated_pixels(platform, images):
    dataset, rows = images
    truth = [_annotation(dl.Polygon(geo=np.array([[10.0, 10.0], [50.0, 10.0], [50.0, 40.0], [10.0, 40.0]]),
                                    label="background"), row["id"], dataset.id) for row in rows[:4]]
    platform.store.insert_annotations(truth)
    model = platform.create_model("seg-bg", dataset, labels=["background", "cat"], output_type="segment", subsets={})
    PolygonOracle.shift = 0
    filters = {"filter": {"id": {"$in": [row["id"] for row in rows[:4]]}}, "resource": "items"}
    metrics = PolygonOracle().evaluate_model(model, dataset, filters=filters)
    assert metrics["mean_iou"] == 1.0 and metrics["instance_tp"] == 4
    assert "background" in metrics["per_label"] and "_background" in metrics["per_label"]


def test_an_object_stored_as_polygon_and_mask_is_one_instance(platform, images):
    dataset, rows = images
    polygon = np.array([[20.0, 20.0], [60.0, 20.0], [60.0, 50.0], [20.0, 50.0]])
    mask = polygon_mask(polygon, 160, 200)
    platform.store.insert_annotations([
        _annotation(dl.Polygon(geo=polygon, label="cat"), rows[0]["id"], dataset.id),
        _annotation(dl.Segmentation(geo=mask, label="cat"), rows[0]["id"], dataset.id)])
    model = platform.create_model("seg-once", dataset, output_type="segment", subsets={})
    PolygonOracle.shift = 0.0
    filters = {"filter": {"id": rows[0]["id"]}, "resource": "items"}
    metrics = PolygonOracle().evaluate_model(model, dataset, filters=filters)
    assert (metrics["instance_tp"], metrics["instance_fn"], metrics["instance_recall"]) == (1, 0, 1.0)


def test_a_model_label_no_scored_item_has_is_named_in_a_warning(platform, images, caplog):
    dataset, rows = images
    model = platform.create_model("four-labels", dataset, labels=[*LABELS, "zebra"], output_type="class", subsets={})
    annotations = []
    for i, row in enumerate(rows):
        annotations.append(_annotation(dl.Classification(label=LABELS[i % 3]), row["id"], dataset.id))
        annotations.append(_annotation(dl.Classification(label=LABELS[i % 3]), row["id"], dataset.id, model, 0.8))
    platform.store.insert_annotations(annotations)
    with caplog.at_level(logging.WARNING, logger="runner.evaluation"):
        metrics = evaluate(platform, model, dataset, None)
    assert metrics["accuracy"] == 1.0 and metrics["f1_macro"] == pytest.approx(0.75)  # as scikit-learn's
    assert metrics["labels_without_truth"] == ["zebra"]
    assert "1 of the model's 4 labels have no item among those scored (zebra): the macro averages count each as 0" \
        in caplog.text


def test_the_per_label_table_keeps_its_columns_aligned_for_wider_cells():
    """COCO's -1 (a label with no ground truth) is wider than the column names' minimum."""
    from runner.reporting import metrics_table

    table = metrics_table({"AP": 0.5, "per_label": {"cat": {"AP": 0.5, "AP50": 1.0, "n_truth": 8},
                                                    "bird": {"AP": -1.0, "AP50": -1.0, "n_truth": 0}}})
    rows = table.splitlines()[-3:]
    assert rows == ["label       AP     AP50  n_truth",
                    "cat     0.5000   1.0000        8",
                    "bird   -1.0000  -1.0000        0"], rows
