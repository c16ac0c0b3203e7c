"""runner.metrics.rasterize and runner.metrics.segmentation on annotation JSON written by dtlpy, hand-made
masks with known IoU / Dice, and scikit-learn's numbers on the same label maps."""

from __future__ import annotations

import math

import dtlpy as dl
import numpy as np
import pytest
from sklearn import metrics as skm

from runner.metrics import segmentation as seg
from runner.metrics.rasterize import annotation_mask, decode_binary, label_map, paint_label_map, polygon_mask
from runner.metrics.segmentation import (
    INSTANCE_SCALARS,
    SEMANTIC_SCALARS,
    SegmentationAccumulator,
    instance_match,
    mask_iou,
    semantic_confusion,
    semantic_metrics,
)

# -- annotation JSON written by dtlpy ------------------------------------------------------------------

def polygon_json(points, label: str, ann_id: str | None = None, confidence: float | None = None) -> dict:
    definition = dl.Polygon(geo=np.asarray(points, dtype=float), label=label)
    return _finish(dl.Annotation.new(annotation_definition=definition).to_json(), ann_id, confidence)


def binary_json(mask: np.ndarray, label: str, ann_id: str | None = None, confidence: float | None = None) -> dict:
    definition = dl.Segmentation(geo=mask, label=label)
    return _finish(dl.Annotation.new(annotation_definition=definition).to_json(), ann_id, confidence)


def _finish(j: dict, ann_id: str | None, confidence: float | None) -> dict:
    j["id"] = ann_id
    if confidence is not None:  # where a model adapter's predictions carry it
        j["metadata"].setdefault("user", {})["model"] = {"name": "m", "confidence": confidence}
    return j


def rect(x0: int, y0: int, x1: int, y1: int) -> list[list[int]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def rect_mask(x0: int, y0: int, x1: int, y1: int, h: int = 20, w: int = 20) -> np.ndarray:
    """The pixels ``polygon_mask(rect(...))`` fills: corners inclusive."""
    m = np.zeros((h, w), bool)
    m[y0:y1 + 1, x0:x1 + 1] = True
    return m


# Two 10x10-pixel squares sharing 5 columns: intersection 50, union 150 -> IoU 1/3, Dice 100/200 = 1/2.
A, B = rect(0, 0, 9, 9), rect(5, 0, 14, 9)


# -- rasterize -----------------------------------------------------------------------------------------

def test_dtlpy_json_shapes_and_polygon_pixels():
    j = polygon_json(rect(2, 1, 5, 3), "cat", "p1")
    assert j["type"] == "segment" and isinstance(j["coordinates"][0][0], dict)
    mask = annotation_mask(j, 8, 10)
    assert mask.dtype == bool and mask.shape == (8, 10)
    np.testing.assert_array_equal(mask, rect_mask(2, 1, 5, 3, 8, 10))  # 4 x 3 pixels, outline included
    assert mask.sum() == (5 - 2 + 1) * (3 - 1 + 1)
    tri = polygon_mask(np.array([[0, 0], [9, 0], [0, 9]]), 10, 10)  # x = column, y = row, diagonal included
    np.testing.assert_array_equal(tri, np.add.outer(np.arange(10), np.arange(10)) <= 9)
    clipped = polygon_mask(np.array(rect(-5, -5, 2, 2)), 10, 10)
    np.testing.assert_array_equal(clipped, rect_mask(0, 0, 2, 2, 10, 10))


def test_binary_round_trip_and_same_as_dtlpy():
    rng = np.random.default_rng(0)
    mask = rng.random((13, 17)) < 0.4
    j = binary_json(mask, "dog", "b1")
    assert j["type"] == "binary" and j["coordinates"].startswith("data:image/png;base64,")
    np.testing.assert_array_equal(annotation_mask(j, 13, 17), mask)
    np.testing.assert_array_equal(decode_binary(j), dl.Segmentation.from_json(j).geo > 0)
    legacy = {**j, "coordinates": {"data": j["coordinates"]}}  # also read by dtlpy
    np.testing.assert_array_equal(annotation_mask(legacy, 13, 17), mask)


def test_every_ring_is_filled():
    j = polygon_json(rect(0, 0, 3, 3), "cat", "rings")
    j["coordinates"].append([{"x": 6.0, "y": 6.0, "z": 0}, {"x": 9.0, "y": 6.0, "z": 0}, {"x": 9.0, "y": 9.0, "z": 0},
                             {"x": 6.0, "y": 9.0, "z": 0}])
    np.testing.assert_array_equal(annotation_mask(j, 12, 12), rect_mask(0, 0, 3, 3, 12, 12) | rect_mask(6, 6, 9, 9, 12, 12))


def test_label_map_paints_in_order():
    first, second = polygon_json(A, "cat"), binary_json(rect_mask(5, 0, 14, 9), "dog")
    lm = label_map([first, second], {"cat": 3, "dog": 7}, 20, 20, background=-1)
    assert lm.dtype == np.int32
    expected = np.full((20, 20), -1)
    expected[rect_mask(0, 0, 9, 9)] = 3
    expected[rect_mask(5, 0, 14, 9)] = 7  # the later annotation on top
    np.testing.assert_array_equal(lm, expected)
    np.testing.assert_array_equal(label_map([second, first], {"cat": 3, "dog": 7}, 20, 20)[0, 5:10], 3)
    np.testing.assert_array_equal(paint_label_map([], [], 2, 3, background=4), np.full((2, 3), 4))
    with pytest.raises(ValueError, match=r"1 annotation\(s\) with labels not in label_index.*'x1'"):
        label_map([first, polygon_json(A, "zebra", "x1")], {"cat": 1}, 20, 20)


def test_bad_annotations_name_the_annotation():
    two_points = polygon_json([[0, 0], [5, 5], [5, 0]], "cat", "ann-2pt")
    two_points["coordinates"][0].pop()
    with pytest.raises(ValueError, match=r"'ann-2pt'.*ring 0 has 2 points"):
        annotation_mask(two_points, 10, 10)
    with pytest.raises(ValueError, match="at least 3 points"):
        polygon_mask(np.array([[0, 0], [1, 1]]), 4, 4)
    small = binary_json(np.ones((5, 7), bool), "dog", "ann-small")
    with pytest.raises(ValueError, match=r"'ann-small'.*5x7.*item is 6x7"):
        annotation_mask(small, 6, 7)
    box = dl.Annotation.new(annotation_definition=dl.Box(top=1, left=1, bottom=3, right=3, label="cat")).to_json()
    box["id"] = "ann-box"
    with pytest.raises(ValueError, match=r"'ann-box'.*type 'box' has no mask"):
        annotation_mask(box, 10, 10)
    with pytest.raises(ValueError, match="'ann-garbage'.*not a base64 PNG"):
        annotation_mask({"id": "ann-garbage", "type": "binary", "coordinates": "data:image/png;base64,AAAA"}, 5, 7)
    with pytest.raises(ValueError, match="image size"):
        annotation_mask(small, 0, 7)


# -- semantic ------------------------------------------------------------------------------------------

def test_overlapping_rectangles_known_iou_and_dice():
    index = {"cat": 1}
    truth = label_map([polygon_json(A, "cat")], index, 20, 20)
    pred = label_map([polygon_json(B, "cat")], index, 20, 20)
    cm = semantic_confusion(truth, pred, 2)
    np.testing.assert_array_equal(cm, [[250, 50], [50, 50]])
    out = semantic_metrics(cm, ["background", "cat"])
    cat = out["per_label"]["cat"]
    assert math.isclose(cat["iou"], 1 / 3) and math.isclose(cat["dice"], 0.5)
    assert cat["precision"] == cat["recall"] == 0.5
    assert cat["n_truth_pixels"] == cat["n_predicted_pixels"] == 100
    assert math.isclose(out["per_label"]["background"]["iou"], 250 / 350)
    assert math.isclose(out["mean_iou"], (1 / 3 + 250 / 350) / 2)
    assert math.isclose(out["pixel_accuracy"], 300 / 400)
    assert math.isclose(out["frequency_weighted_iou"], (300 * 250 / 350 + 100 / 3) / 400)
    no_bg = semantic_metrics(cm, ["background", "cat"], include_background=False)
    assert math.isclose(no_bg["mean_iou"], 1 / 3) and math.isclose(no_bg["mean_dice"], 0.5)
    assert math.isclose(no_bg["frequency_weighted_iou"], 1 / 3)
    assert no_bg["classes_in_mean"] == ["cat"] and "background" in no_bg["per_label"]
    assert no_bg["pixel_accuracy"] == out["pixel_accuracy"]
    assert set(SEMANTIC_SCALARS) <= set(out)


def test_semantic_matches_scikit_learn_on_a_batch():
    rng = np.random.default_rng(1)
    k = 5
    truth = rng.integers(0, k, size=(4, 31, 23))
    pred = np.where(rng.random(truth.shape) < 0.6, truth, rng.integers(0, k, size=truth.shape)).astype(np.uint8)
    cm = semantic_confusion(truth, pred, k)
    t, p = truth.ravel(), pred.ravel()
    labels = list(range(k))
    np.testing.assert_array_equal(cm, skm.confusion_matrix(t, p, labels=labels))
    names = [f"c{i}" for i in labels]
    out = semantic_metrics(cm, names)
    got = {key: np.array([out["per_label"][n][key] for n in names]) for key in ("iou", "dice", "precision", "recall")}
    np.testing.assert_allclose(got["iou"], skm.jaccard_score(t, p, labels=labels, average=None), rtol=1e-12)
    np.testing.assert_allclose(got["dice"], skm.f1_score(t, p, labels=labels, average=None), rtol=1e-12)
    np.testing.assert_allclose(got["precision"], skm.precision_score(t, p, labels=labels, average=None), rtol=1e-12)
    np.testing.assert_allclose(got["recall"], skm.recall_score(t, p, labels=labels, average=None), rtol=1e-12)
    assert math.isclose(out["pixel_accuracy"], skm.accuracy_score(t, p), rel_tol=1e-12)
    assert math.isclose(out["mean_iou"], skm.jaccard_score(t, p, labels=labels, average="macro"), rel_tol=1e-12)
    assert math.isclose(out["frequency_weighted_iou"], skm.jaccard_score(t, p, labels=labels, average="weighted"),
                        rel_tol=1e-12)
    # summing per-image matrices = one matrix of the batch
    np.testing.assert_array_equal(sum(semantic_confusion(a, b, k) for a, b in zip(truth, pred, strict=True)), cm)


def test_ignore_index_and_chunking(monkeypatch):
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, size=(50, 40)).astype(np.uint8)
    truth[rng.random(truth.shape) < 0.2] = 255
    pred = rng.integers(0, 3, size=truth.shape)
    keep = truth != 255
    expected = skm.confusion_matrix(truth[keep], pred[keep], labels=[0, 1, 2])
    np.testing.assert_array_equal(semantic_confusion(truth, pred, 3, ignore_index=255), expected)
    monkeypatch.setattr(seg, "_PIXEL_CHUNK", 97)  # many chunks, some partly ignored
    np.testing.assert_array_equal(semantic_confusion(truth, pred, 3, ignore_index=255), expected)


def test_absent_class_is_null_and_out_of_the_means():
    truth = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1]])
    out = semantic_metrics(semantic_confusion(truth, pred, 4), ["bg", "a", "b", "never_predicted"])
    assert out["per_label"]["b"] == {"iou": None, "dice": None, "precision": None, "recall": None,
                                     "n_truth_pixels": 0, "n_predicted_pixels": 0}
    assert out["classes_in_mean"] == ["bg", "a"]
    assert math.isclose(out["mean_iou"], (1 / 2 + 2 / 3) / 2)
    only_truth = semantic_metrics(np.array([[3, 0], [2, 0]]), ["bg", "x"])  # x never predicted
    assert only_truth["per_label"]["x"]["precision"] is None and only_truth["per_label"]["x"]["iou"] == 0.0
    precision = [only_truth["per_label"][n]["precision"] for n in ("bg", "x")]
    np.testing.assert_allclose(np.array(precision, dtype=float),  # None -> NaN
                               skm.precision_score([0, 0, 0, 1, 1], [0] * 5, labels=[0, 1], average=None,
                                                   zero_division=np.nan))


@pytest.mark.parametrize(("args", "message"), [
    ((np.zeros((2, 3), int), np.zeros((3, 2), int), 2), "same shape"),
    ((np.zeros((2, 2), int), np.full((2, 2), 2), 2), r"prediction holds class indices outside 0..1: min 2, max 2"),
    ((np.full((2, 2), -1), np.zeros((2, 2), int), 2), r"truth holds class indices outside 0..1"),
    ((np.zeros((2, 2)), np.zeros((2, 2), int), 2), "integer class indices"),
    ((np.zeros((2, 2), int), np.zeros((2, 2), int), 0), "n_classes"),
])
def test_semantic_confusion_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        semantic_confusion(*args)


def test_semantic_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="2 class names for a 3x3"):
        semantic_metrics(np.eye(3, dtype=int), ["a", "b"])
    with pytest.raises(ValueError, match="square"):
        semantic_metrics(np.zeros((2, 3), int), ["a", "b"])
    with pytest.raises(ValueError, match="no pixels"):
        semantic_metrics(np.zeros((2, 2), int), ["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        semantic_metrics(np.eye(2, dtype=int), ["a", "a"])
    with pytest.raises(ValueError, match="non-negative integer"):
        semantic_metrics(-np.eye(2, dtype=int), ["a", "b"])


# -- instance ------------------------------------------------------------------------------------------

def test_mask_iou_exact_and_same_as_pycocotools(monkeypatch):
    a = np.stack([rect_mask(0, 0, 9, 9), rect_mask(0, 0, 19, 19), np.zeros((20, 20), bool)])
    b = np.stack([rect_mask(5, 0, 14, 9), rect_mask(0, 0, 9, 9)])
    expected = [[1 / 3, 1.0], [100 / 400, 100 / 400], [0.0, 0.0]]
    np.testing.assert_allclose(mask_iou(a, b), expected, rtol=1e-15)
    rng = np.random.default_rng(3)
    t = rng.random((6, 40, 30)) < rng.random((6, 1, 1))
    p = rng.random((9, 40, 30)) < rng.random((9, 1, 1))
    ours = mask_iou(t, p)
    monkeypatch.setattr(seg, "_MATMUL_BUDGET", 50)  # chunks of 3 pixels
    np.testing.assert_array_equal(mask_iou(t, p), ours)
    mask_utils = pytest.importorskip("pycocotools.mask")
    rle = [mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0).astype(np.uint8))) for m in (t, p)]
    np.testing.assert_allclose(ours, mask_utils.iou(rle[1], rle[0], [0] * len(t)).T, rtol=1e-12)


def test_perfect_predictions():
    masks = [rect_mask(0, 0, 4, 4), rect_mask(10, 10, 15, 12), rect_mask(3, 3, 12, 12)]
    out = instance_match(masks, ["a", "b", "a"], masks, ["a", "b", "a"], [0.9, 0.8, 0.7])
    assert (out["tp"], out["fp"], out["fn"]) == (3, 0, 0)
    assert out["precision"] == out["recall"] == out["f1"] == out["mean_match_iou"] == 1.0
    assert out["per_label"]["a"]["tp"] == 2 and out["per_label"]["b"]["recall"] == 1.0
    assert sorted((m["truth"], m["prediction"]) for m in out["matches"]) == [(0, 0), (1, 1), (2, 2)]
    assert set(INSTANCE_SCALARS) <= set(out)


def test_shifted_polygon_below_threshold_is_fp_and_fn():
    truth = [annotation_mask(polygon_json(A, "cat"), 20, 20)]
    pred = [annotation_mask(polygon_json(B, "cat"), 20, 20)]  # IoU 1/3
    out = instance_match(truth, ["cat"], pred, ["cat"], [0.9])
    assert (out["tp"], out["fp"], out["fn"]) == (0, 1, 1)
    assert out["precision"] == out["recall"] == out["f1"] == 0.0 and out["mean_match_iou"] is None
    low = instance_match(truth, ["cat"], pred, ["cat"], [0.9], iou_threshold=0.3)
    assert (low["tp"], low["fp"], low["fn"]) == (1, 0, 0) and math.isclose(low["mean_match_iou"], 1 / 3)
    assert instance_match(truth, ["cat"], pred, ["cat"], [0.9], iou_threshold=1 / 3)["tp"] == 1  # IoU >= threshold


def test_two_predictions_on_one_truth():
    truth = [rect_mask(0, 0, 9, 9)]
    out = instance_match(truth, ["cat"], [rect_mask(0, 0, 9, 9), rect_mask(0, 0, 9, 8)], ["cat", "cat"], [0.5, 0.6])
    assert (out["tp"], out["fp"], out["fn"]) == (1, 1, 0)
    assert out["precision"] == 0.5 and out["recall"] == 1.0 and math.isclose(out["f1"], 2 / 3)


def test_label_mismatch_never_matches():
    m = rect_mask(0, 0, 9, 9)
    out = instance_match([m], ["cat"], [m], ["dog"], [1.0])
    assert (out["tp"], out["fp"], out["fn"]) == (0, 1, 1)
    assert out["per_label"]["cat"]["fn"] == 1 and out["per_label"]["dog"]["fp"] == 1
    assert out["per_label"]["cat"]["precision"] is None and out["per_label"]["dog"]["recall"] is None


def test_higher_score_wins():
    truth = [rect_mask(0, 0, 9, 9)]
    best_fit, worse_fit = rect_mask(0, 0, 9, 9), rect_mask(0, 0, 9, 7)  # IoU 1 and 0.8
    out = instance_match(truth, ["cat"], [best_fit, worse_fit], ["cat", "cat"], [0.4, 0.9])
    assert [(m["prediction"], m["iou"]) for m in out["matches"]] == [(1, 0.8)]
    out = instance_match(truth, ["cat"], [best_fit, worse_fit], ["cat", "cat"], [0.9, 0.4])
    assert [(m["prediction"], m["iou"]) for m in out["matches"]] == [(0, 1.0)]
    tie = instance_match(truth, ["cat"], [worse_fit, best_fit], ["cat", "cat"], [0.5, 0.5])  # input order
    assert [m["prediction"] for m in tie["matches"]] == [0]
    # a prediction takes the best-IoU free truth; the next one gets what is left
    two = instance_match([rect_mask(0, 0, 9, 9), rect_mask(0, 0, 9, 7)], ["cat", "cat"], [best_fit, worse_fit],
                         ["cat", "cat"], [0.9, 0.8])
    assert sorted((m["truth"], m["prediction"]) for m in two["matches"]) == [(0, 0), (1, 1)]


def test_instance_match_rejects_bad_input():
    m = rect_mask(0, 0, 3, 3)
    with pytest.raises(ValueError, match="1 truth masks and 2 truth labels"):
        instance_match([m], ["a", "b"], [], [], [])
    with pytest.raises(ValueError, match="1 prediction masks, 1 labels and 2 scores"):
        instance_match([m], ["a"], [m], ["a"], [0.1, 0.2])
    with pytest.raises(ValueError, match="truth masks are"):
        instance_match([m], ["a"], [np.zeros((5, 5), bool)], ["a"], [0.1])
    with pytest.raises(ValueError, match="iou_threshold"):
        instance_match([m], ["a"], [m], ["a"], [0.1], iou_threshold=0)
    with pytest.raises(ValueError, match="different shapes"):
        instance_match([m, np.zeros((5, 5), bool)], ["a", "a"], [], [], [])
    empty = instance_match([], [], [], [], [])
    assert empty["tp"] == 0 and empty["precision"] is None and empty["per_label"] == {}


# -- accumulation over items ---------------------------------------------------------------------------

def _items():
    """(height, width, truth, predictions) of three items, polygons and binary masks, with confidences."""
    rng = np.random.default_rng(4)
    blob = rng.random((30, 40)) < 0.3
    return [
        (20, 20, [polygon_json(A, "cat", "t1"), polygon_json(rect(12, 12, 18, 18), "dog", "t2")],
         [polygon_json(B, "cat", "p1", 0.9), polygon_json(rect(12, 12, 18, 17), "dog", "p2", 0.8)]),
        (30, 40, [binary_json(blob, "dog", "t3")],
         [binary_json(blob, "dog", "p3", 0.7), binary_json(rect_mask(0, 0, 5, 5, 30, 40), "cat", "p4")]),
        (10, 10, [], []),
    ]


def test_accumulator_equals_per_item_computation():
    labels = ["cat", "dog"]
    acc = SegmentationAccumulator(labels, include_background=False)
    all_truth, all_pred, totals = [], [], np.zeros(3, int)
    index = {"cat": 1, "dog": 2}
    for h, w, truth, pred in _items():
        acc.add(h, w, truth, pred)
        all_truth.append(label_map(truth, index, h, w).ravel())
        all_pred.append(label_map(pred, index, h, w).ravel())
        masks = [[annotation_mask(a, h, w) for a in side] for side in (truth, pred)]
        one = instance_match(masks[0], [a["label"] for a in truth], masks[1], [a["label"] for a in pred],
                             [seg.confidence_of(a) or 1.0 for a in pred])
        totals += (one["tp"], one["fp"], one["fn"])
    out = acc.result()
    t, p = np.concatenate(all_truth), np.concatenate(all_pred)
    assert out["n_items"] == 3 and out["predictions_without_confidence"] == 1
    sem = out["semantic"]
    np.testing.assert_array_equal(sem["confusion_matrix"]["matrix"], skm.confusion_matrix(t, p, labels=[0, 1, 2]))
    assert sem["confusion_matrix"]["labels"] == ["background", "cat", "dog"]
    assert sem["classes_in_mean"] == ["cat", "dog"]
    assert math.isclose(sem["mean_iou"], skm.jaccard_score(t, p, labels=[1, 2], average="macro"), rel_tol=1e-12)
    assert math.isclose(sem["pixel_accuracy"], skm.accuracy_score(t, p), rel_tol=1e-12)
    inst = out["instance"]
    assert (inst["tp"], inst["fp"], inst["fn"]) == tuple(totals) == (2, 2, 1)  # cat shifted: fp + fn; stray cat
    assert inst["per_label"]["dog"] == {"tp": 2, "fp": 0, "fn": 0, "n_truth": 2, "n_predictions": 2,
                                        "precision": 1.0, "recall": 1.0, "f1": 1.0,
                                        "mean_match_iou": pytest.approx((1 + 42 / 49) / 2)}
    assert inst["per_label"]["cat"]["fp"] == 2 and inst["per_label"]["cat"]["fn"] == 1


def test_accumulator_labels_and_skipped_types():
    acc = SegmentationAccumulator({"dog": 5, "cat": 2})  # ordered by index: cat, dog
    assert acc.class_names == ["background", "cat", "dog"] and acc.label_index == {"cat": 1, "dog": 2}
    box = dl.Annotation.new(annotation_definition=dl.Box(top=1, left=1, bottom=3, right=3, label="cat")).to_json()
    acc.add(20, 20, [polygon_json(A, "cat"), box], [polygon_json(A, "cat", confidence=0.3)])
    out = acc.result()
    assert out["skipped_annotations"] == {"box": 1}
    assert out["instance"]["tp"] == 1 and out["instance"]["per_label"]["dog"]["n_truth"] == 0
    assert out["semantic"]["per_label"]["dog"]["iou"] is None and out["semantic"]["pixel_accuracy"] == 1.0
    assert out["semantic"]["classes_in_mean"] == ["background", "cat"]


def test_accumulator_rejects_unknown_labels_and_bad_items_without_changing_state():
    acc = SegmentationAccumulator(["cat", "dog"])
    acc.add(20, 20, [polygon_json(A, "cat")], [])
    before = (acc.confusion.copy(), acc._counts.copy(), acc.n_items)
    truth = [polygon_json(A, "zebra"), polygon_json(B, "zebra"), polygon_json(A, "cat")]
    with pytest.raises(ValueError, match=r"2 truth and 1 prediction annotation\(s\).*\{'zebra': 2, 'lion': 1\}"):
        acc.add(20, 20, truth, [polygon_json(A, "lion")])
    two_points = polygon_json([[0, 0], [5, 5], [5, 0]], "dog", "ann-2pt")
    two_points["coordinates"][0].pop()
    with pytest.raises(ValueError, match="ann-2pt"):
        acc.add(20, 20, [polygon_json(A, "cat")], [two_points])
    with pytest.raises(ValueError, match=r"'ann-small'.*5x7.*item is 20x20"):
        acc.add(20, 20, [binary_json(np.ones((5, 7), bool), "cat", "ann-small")], [])
    assert np.array_equal(acc.confusion, before[0]) and np.array_equal(acc._counts, before[1])
    assert acc.n_items == before[2] == 1


def test_accumulator_rejects_bad_construction():
    with pytest.raises(ValueError, match="'background' is a model label"):
        SegmentationAccumulator(["background", "cat"])
    with pytest.raises(ValueError, match="unique"):
        SegmentationAccumulator(["cat", "cat"])
    with pytest.raises(ValueError, match="not one string"):
        SegmentationAccumulator("cat")
    with pytest.raises(ValueError, match="distinct"):
        SegmentationAccumulator({"cat": 1, "dog": 1})
    with pytest.raises(ValueError, match="no items"):
        SegmentationAccumulator(["cat"]).result()
