"""runner.metrics.detection against pycocotools' COCOeval("bbox") on generated sets."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from runner.metrics.detection import (
    COCO_SCALARS,
    RECALL_THRESHOLDS,
    Boxes,
    coco_box_metrics,
    coco_eval_arrays,
)

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

# -- pycocotools on the same arrays -------------------------------------------------------------------

def pycoco_eval(truth: Boxes, preds: Boxes, n_images: int, n_labels: int, *, max_dets=None,
                iou_thresholds=None) -> COCOeval:
    gt_dict = {"images": [{"id": i + 1} for i in range(n_images)],
               "categories": [{"id": k + 1, "name": str(k)} for k in range(n_labels)],
               "annotations": [{"id": j + 1, "image_id": int(i) + 1, "category_id": int(c) + 1,
                                "bbox": b.tolist(), "area": float(a), "iscrowd": 0}
                               for j, (i, c, b, a) in enumerate(zip(truth.image, truth.label, truth.xywh,
                                                                    truth.area, strict=True))]}
    dt_list = [{"image_id": int(i) + 1, "category_id": int(c) + 1, "bbox": b.tolist(), "score": float(s)}
               for i, c, b, s in zip(preds.image, preds.label, preds.xywh, preds.score, strict=True)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        dt = gt.loadRes(dt_list)
        ev = COCOeval(gt, dt, "bbox")
        if max_dets is not None:
            ev.params.maxDets = list(max_dets)
        if iou_thresholds is not None:
            ev.params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def assert_same_as_pycocotools(truth: Boxes, preds: Boxes, n_images: int, n_labels: int) -> dict:
    ev = pycoco_eval(truth, preds, n_images, n_labels)
    ours = coco_box_metrics(truth, preds, n_labels, n_images=n_images)
    got = np.array([ours[k] for k in COCO_SCALARS])
    np.testing.assert_allclose(got, ev.stats, rtol=0, atol=1e-9, err_msg=str(dict(zip(COCO_SCALARS, ev.stats, strict=True))))
    precision, recall = coco_eval_arrays(truth, preds, n_labels)
    np.testing.assert_allclose(precision, ev.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(recall, ev.eval["recall"], rtol=0, atol=1e-12)
    for k in range(n_labels):  # per label: mean of precision[:, :, k, area all, 100 dets] over entries > -1
        p = ev.eval["precision"][:, :, k, 0, -1]
        expected = float(np.mean(p[p > -1])) if (p > -1).any() else -1.0
        assert ours["per_label"][str(k)]["AP"] == pytest.approx(expected, abs=1e-9)
        p50 = ev.eval["precision"][0, :, k, 0, -1]
        assert ours["per_label"][str(k)]["AP50"] == pytest.approx(
            float(np.mean(p50[p50 > -1])) if (p50 > -1).any() else -1.0, abs=1e-9)
        curve = ours["pr_curves"][str(k)]
        assert len(curve["recall"]) == len(curve["precision"]) == 101
        np.testing.assert_allclose(curve["precision"], p50, rtol=0, atol=1e-12)
    return ours


# -- generated sets ------------------------------------------------------------------------------------

def random_set(seed: int, n_images: int = 120, n_labels: int = 4, *, gt_rate: float = 4.0,
               fp_rate: float = 2.0, hit: float = 0.8, jitter: float = 0.08, side=(4.0, 300.0),
               integer: bool = False, score_decimals: int | None = None, gt_labels=None,
               gt_images=None, pred_images=None) -> tuple[Boxes, Boxes]:
    """Truth boxes on the images ``gt_images`` (default all); predictions = jittered truth (some twice,
    some with a wrong label) + false positives on ``pred_images``; everything shuffled."""
    rng = np.random.default_rng(seed)
    gt_images = np.arange(n_images) if gt_images is None else np.asarray(gt_images)
    pred_images = np.arange(n_images) if pred_images is None else np.asarray(pred_images)
    gt_labels = np.arange(n_labels) if gt_labels is None else np.asarray(gt_labels)

    def boxes(n):
        s = np.exp(rng.uniform(np.log(side[0]), np.log(side[1]), n))
        ar = np.exp(rng.normal(0, 0.5, n))
        w, h = np.maximum(s * np.sqrt(ar), 1), np.maximum(s / np.sqrt(ar), 1)
        b = np.column_stack([rng.uniform(0, 400, n), rng.uniform(0, 300, n), w, h])
        return np.round(b) if integer else b

    g_img = np.repeat(gt_images, rng.poisson(gt_rate, len(gt_images)))
    g_lab = rng.choice(gt_labels, len(g_img))
    g_box = boxes(len(g_img))
    sel = np.flatnonzero(rng.random(len(g_img)) < hit)
    sel = sel[np.isin(g_img[sel], pred_images)]
    sel = np.concatenate([sel, sel[rng.random(len(sel)) < 0.2]])
    b = g_box[sel]
    p_box = np.column_stack([b[:, :2] + rng.normal(0, jitter, (len(sel), 2)) * b[:, 2:],
                             b[:, 2:] * np.exp(rng.normal(0, jitter, (len(sel), 2)))])
    if integer:
        p_box = np.maximum(np.round(p_box), [-1e9, -1e9, 1, 1])
    p_lab = g_lab[sel].copy()
    wrong = rng.random(len(sel)) < 0.1
    p_lab[wrong] = rng.integers(0, n_labels, wrong.sum())
    f_img = np.repeat(pred_images, rng.poisson(fp_rate, len(pred_images)))
    p_img = np.concatenate([g_img[sel], f_img])
    p_lab = np.concatenate([p_lab, rng.integers(0, n_labels, len(f_img))])
    p_box = np.concatenate([p_box, boxes(len(f_img))])
    score = rng.random(len(p_img))
    if score_decimals is not None:
        score = np.round(score, score_decimals)
    gp, pp = rng.permutation(len(g_img)), rng.permutation(len(p_img))
    return (Boxes.from_xywh(g_img[gp], g_lab[gp], g_box[gp]),
            Boxes.from_xywh(p_img[pp], p_lab[pp], p_box[pp], score[pp]))


def concat(*parts: Boxes) -> Boxes:
    scores = [p.score for p in parts]
    return Boxes(np.concatenate([p.image for p in parts]), np.concatenate([p.label for p in parts]),
                 np.concatenate([p.xywh for p in parts]),
                 None if any(s is None for s in scores) else np.concatenate(scores),
                 np.concatenate([p.area for p in parts]))


# -- equality with pycocotools ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_typical_sets(seed):
    truth, preds = random_set(seed, n_images=150, n_labels=5)
    out = assert_same_as_pycocotools(truth, preds, 150, 5)
    assert 0 < out["AP"] < 1


def test_empty_images_and_missing_predictions_and_background_predictions():
    # images 0-29: truth and predictions; 30-49: truth only; 50-69: predictions only; 70-99: nothing
    truth, preds = random_set(3, n_images=100, gt_images=np.arange(50), pred_images=np.r_[0:30, 50:70])
    assert set(np.unique(truth.image)) <= set(range(50)) and set(np.unique(preds.image)) <= set(range(70))
    assert_same_as_pycocotools(truth, preds, 100, 4)


def test_labels_absent_from_truth_give_minus_one():
    truth, preds = random_set(4, n_images=80, n_labels=6, gt_labels=[0, 2, 3])
    out = assert_same_as_pycocotools(truth, preds, 80, 6)
    assert out["per_label"]["1"]["AP"] == -1.0 and out["per_label"]["5"]["n_truth"] == 0
    assert out["per_label"]["1"]["n_predictions"] > 0


def test_area_range_without_truth_is_minus_one():
    truth, preds = random_set(5, n_images=60, side=(120.0, 300.0))  # every truth box large
    out = assert_same_as_pycocotools(truth, preds, 60, 4)
    assert out["AP_small"] == out["AR_small"] == -1.0 and out["AP_large"] > 0


@pytest.mark.parametrize("decimals", [1, 0])
def test_score_ties(decimals):
    truth, preds = random_set(6, n_images=100, score_decimals=decimals)  # 0: scores 0.0 and 1.0 only
    assert len(np.unique(preds.score)) <= 11
    assert_same_as_pycocotools(truth, preds, 100, 4)


def test_integer_boxes_exact_iou_ties_and_duplicate_truth():
    truth, preds = random_set(7, n_images=60, integer=True, jitter=0.1)
    # duplicate some truth boxes (equal IoU with every detection) and crowd one image with overlaps
    dup = np.arange(0, len(truth), 5)
    truth = concat(truth, Boxes.from_xywh(truth.image[dup], truth.label[dup], truth.xywh[dup]))
    assert_same_as_pycocotools(truth, preds, 60, 4)


def test_iou_exactly_at_thresholds():
    # truth 10x10 at the origin; detections whose IoU is exactly 0.5, 0.75 and 0.95 (and just below)
    gt = Boxes.from_xywh(np.arange(4), np.zeros(4), np.tile([0.0, 0.0, 10.0, 10.0], (4, 1)))
    dets = [[0, 0, 10, 5], [0, 0, 10, 7.5], [0, 0, 10, 9.5], [0, 0, 10, 4.99]]
    preds = Boxes.from_xywh(np.arange(4), np.zeros(4), dets, [0.9, 0.8, 0.7, 0.6])
    out = assert_same_as_pycocotools(gt, preds, 4, 1)
    assert out["AP50"] < 1


def test_area_boundaries_and_area_field():
    rng = np.random.default_rng(8)
    sides = np.array([[32, 32], [16, 64], [96, 96], [48, 192], [31.9, 32], [96, 96.1], [8, 8], [200, 150]])
    n = 240
    wh = sides[rng.integers(0, len(sides), n)]
    xy = rng.uniform(0, 300, (n, 2))
    img, lab = rng.integers(0, 40, n), rng.integers(0, 3, n)
    truth = Boxes.from_xywh(img, lab, np.column_stack([xy, wh]))
    assert {1024.0, 9216.0} <= set(truth.area.tolist())
    keep = rng.random(n) < 0.85
    # predictions: exact copies (area on the same boundaries) and slightly shifted ones, plus noise
    pxy = xy[keep] + rng.choice([0.0, 1.5], (keep.sum(), 2))
    noise = rng.integers(0, len(sides), 60)
    preds = Boxes.from_xywh(np.r_[img[keep], rng.integers(0, 40, 60)], np.r_[lab[keep], rng.integers(0, 3, 60)],
                            np.r_[np.column_stack([pxy, wh[keep]]), np.column_stack([rng.uniform(0, 300, (60, 2)),
                                                                                      sides[noise]])],
                            rng.random(keep.sum() + 60))
    assert_same_as_pycocotools(truth, preds, 40, 3)
    # a truth 'area' field different from w * h (e.g. a segmentation area) decides the area range
    truth2 = Boxes.from_xywh(truth.image, truth.label, truth.xywh, area=truth.area * rng.uniform(0.5, 1.2, n))
    assert_same_as_pycocotools(truth2, preds, 40, 3)


def test_more_than_100_detections_on_one_image():
    truth, preds = random_set(9, n_images=20, n_labels=2)
    rng = np.random.default_rng(9)
    # image 0, label 0: 40 truth boxes and 260 detections (jittered truth + noise, tied and untied scores)
    g = np.column_stack([rng.uniform(0, 400, (40, 2)), rng.uniform(10, 60, (40, 2))])
    jit = g[rng.integers(0, 40, 200)] + np.r_[rng.normal(0, 2, (200, 2)).T, np.zeros((2, 200))].T
    d = np.r_[jit, np.column_stack([rng.uniform(0, 400, (60, 2)), rng.uniform(10, 60, (60, 2))])]
    score = np.r_[np.round(rng.random(200), 2), rng.random(60)]
    truth = concat(truth, Boxes.from_xywh(np.zeros(40), np.zeros(40), g))
    preds = concat(preds, Boxes.from_xywh(np.zeros(260), np.zeros(260), d, score))
    assert_same_as_pycocotools(truth, preds, 20, 2)


def test_crowded_overlapping_boxes():
    # few images, many overlapping boxes of one label across the area ranges: the greedy matching,
    # the preference for non-ignored truth and the skipping of matched truth all matter
    rng = np.random.default_rng(10)
    n = 300
    img, lab = rng.integers(0, 5, n), rng.integers(0, 2, n)
    centre = rng.uniform(40, 80, (n, 2))
    wh = np.exp(rng.uniform(np.log(10), np.log(140), (n, 2)))
    truth = Boxes.from_xywh(img, lab, np.column_stack([centre - wh / 2, wh]))
    sel = rng.integers(0, n, 500)
    d = truth.xywh[sel] * np.exp(rng.normal(0, 0.1, (500, 4)))
    preds = Boxes.from_xywh(img[sel], lab[sel], d, np.round(rng.random(500), 2))
    assert_same_as_pycocotools(truth, preds, 5, 2)


def test_equal_iou_goes_to_the_later_truth():
    # det 1 overlaps truth A and B equally (IoU 2/3): pycocotools gives it the later one, so det 2 (a copy
    # of A, IoU 0.43 with B) can still match A on image 0; on image 1 the truth order is reversed
    a, b = [8.0, 0.0, 10.0, 10.0], [12.0, 0.0, 10.0, 10.0]
    truth = Boxes.from_xywh([0, 0, 1, 1], [0, 0, 0, 0], [a, b, b, a])
    preds = Boxes.from_xywh([0, 0, 1, 1], [0, 0, 0, 0], [[10, 0, 10, 10], a, [10, 0, 10, 10], a], [0.9, 0.8, 0.9, 0.8])
    out = assert_same_as_pycocotools(truth, preds, 2, 1)
    assert out["AR100"] < 1


def test_coarse_grid_boxes_many_equal_ious():
    rng = np.random.default_rng(17)
    n, m = 400, 700
    grid = lambda k: np.column_stack([rng.integers(0, 6, (k, 2)) * 4, rng.choice([8, 12, 40, 100], (k, 2))])  # noqa: E731
    truth = Boxes.from_xywh(rng.integers(0, 8, n), rng.integers(0, 2, n), grid(n))
    preds = Boxes.from_xywh(rng.integers(0, 8, m), rng.integers(0, 2, m), grid(m), np.round(rng.random(m), 1))
    assert_same_as_pycocotools(truth, preds, 8, 2)


def test_accumulation_in_label_chunks(monkeypatch):
    import runner.metrics.detection as detection

    truth, preds = random_set(18, n_images=60, n_labels=7)
    monkeypatch.setattr(detection, "_CHUNK", 2000)  # a few labels per chunk, some labels alone
    assert_same_as_pycocotools(truth, preds, 60, 7)


def test_perfect_predictions_score_one():
    truth, _ = random_set(11, n_images=50)
    preds = Boxes.from_xywh(truth.image, truth.label, truth.xywh, np.random.default_rng(0).random(len(truth)))
    out = assert_same_as_pycocotools(truth, preds, 50, 4)
    assert out["AP"] == out["AP50"] == out["AP75"] == out["AR100"] == 1.0
    assert all(v["AP"] == 1.0 for v in out["per_label"].values())


def test_custom_max_detections_and_iou_thresholds_arrays():
    truth, preds = random_set(12, n_images=40, gt_rate=8, fp_rate=6)
    ev = pycoco_eval(truth, preds, 40, 4, max_dets=[1, 3, 5], iou_thresholds=[0.3, 0.5, 0.7])
    precision, recall = coco_eval_arrays(truth, preds, 4, iou_thresholds=[0.3, 0.5, 0.7], max_detections=(5, 1, 3))
    np.testing.assert_allclose(precision, ev.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(recall, ev.eval["recall"], rtol=0, atol=1e-12)
    out = coco_box_metrics(truth, preds, 4, iou_thresholds=[0.3, 0.5, 0.7], max_detections=(1, 3, 5))
    assert {"AR1", "AR3", "AR5"} <= set(out) and out["AP75"] == -1.0  # 0.75 is not a threshold here


# -- API ---------------------------------------------------------------------------------------------------

def test_output_shape_and_names():
    truth, preds = random_set(13, n_images=30, n_labels=3)
    out = coco_box_metrics(truth, preds, 3, label_names=["cat", "dog", "bird"])
    assert set(COCO_SCALARS) <= set(out) and all(isinstance(out[k], float) for k in COCO_SCALARS)
    assert list(out["per_label"]) == list(out["pr_curves"]) == ["cat", "dog", "bird"]
    assert set(out["per_label"]["dog"]) == {"AP", "AP50", "AP75", "n_truth", "n_predictions"}
    assert out["pr_curves"]["cat"]["recall"] == RECALL_THRESHOLDS.tolist() and len(RECALL_THRESHOLDS) == 101
    assert sum(v["n_truth"] for v in out["per_label"].values()) == len(truth)


def test_from_xyxy_matches_from_xywh():
    truth, preds = random_set(14, n_images=30)
    xyxy = np.column_stack([preds.xywh[:, :2], preds.xywh[:, :2] + preds.xywh[:, 2:]])
    alt = Boxes.from_xyxy(preds.image, preds.label, xyxy, preds.score)
    np.testing.assert_allclose(alt.xywh, preds.xywh, atol=1e-9)
    a, b = coco_box_metrics(truth, preds, 4), coco_box_metrics(truth, alt, 4)
    assert all(abs(a[k] - b[k]) < 1e-9 for k in COCO_SCALARS)


def test_no_predictions_and_no_truth():
    truth, preds = random_set(15, n_images=10)
    none = Boxes.from_xywh([], [], np.zeros((0, 4)), [])
    out = coco_box_metrics(truth, none, 4)
    assert out["AP"] == 0.0 and out["AR100"] == 0.0
    out = coco_box_metrics(Boxes.from_xywh([], [], np.zeros((0, 4))), preds, 4)
    assert all(out[k] == -1.0 for k in COCO_SCALARS)


def test_invalid_input():
    truth, preds = random_set(16, n_images=10)
    with pytest.raises(ValueError):
        coco_box_metrics(truth, Boxes.from_xywh(preds.image, preds.label, preds.xywh), 4)  # no scores
    with pytest.raises(ValueError):
        coco_box_metrics(truth, preds, 2)  # labels beyond n_labels
    with pytest.raises(ValueError):
        coco_box_metrics(truth, preds, 4, n_images=3)
    with pytest.raises(ValueError):
        Boxes.from_xywh([0, 1], [0], [[0, 0, 1, 1]])
    with pytest.raises(ValueError):
        Boxes.from_xywh([0], [0], [[0, np.nan, 1, 1]], [0.5])
