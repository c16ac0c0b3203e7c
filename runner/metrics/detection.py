"""COCO bounding-box evaluation in vectorized numpy: the numbers of pycocotools ``COCOeval(gt, dt, "bbox")``.

Semantics follow pycocotools' ``cocoeval.py`` (default parameters) step by step, without a Python loop over
(image, label) groups:

* per (image, label) group, detections are ranked by ``-score`` (stable: input order breaks ties) and cut to
  the largest ``max_detections``; ground truth keeps its input order, the ignored ones (area outside the
  range) after the others;
* IoU is ``maskUtils.iou`` for boxes, same floating-point operations;
* greedy matching in detection order, per IoU threshold and area range: a detection takes the unmatched
  ground truth with the best IoU ``>= min(t, 1 - 1e-10)`` (on an equal IoU the later one), a non-ignored one
  if any qualifies, else an ignored one (the detection is then ignored too); unmatched detections whose area
  is outside the range are ignored;
* accumulation per label over all images (image index order, as COCO's sorted image ids, then rank;
  stable sort on ``-score``), cumulative
  TP / FP, the right-to-left precision envelope read at 101 recall thresholds (``searchsorted`` "left"),
  recall = TP / non-ignored ground truth, and summary means over entries ``> -1``.

Limitation: every box is taken as ``iscrowd = 0`` (no crowd regions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # pycocotools: np.linspace(.5, .95, round((.95 - .5) / .05) + 1)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # the 101-point recall grid of COCO
AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2),
               "large": (96.0 ** 2, 1e10)}  # inclusive at both ends, as pycocotools
COCO_SCALARS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")

_EPS = np.spacing(1)
_CHUNK = 1 << 22  # elements of the (rows, detections) arrays accumulated at once


@dataclass(frozen=True, eq=False)  # no field-wise ==: the fields are arrays
class Boxes:
    """Boxes, one row each: image index, label index (0..n_labels-1), COCO ``x, y, width, height``, score
    (predictions) and area, which decides the area range. ``area`` defaults to ``width * height``; give the
    annotations' COCO ``area`` field for ground truth that has one (pycocotools always takes
    ``width * height`` for detections). Coordinates and scores must be finite."""

    image: np.ndarray
    label: np.ndarray
    xywh: np.ndarray
    score: np.ndarray | None = None
    area: np.ndarray | None = None

    def __post_init__(self) -> None:
        xywh = np.asarray(self.xywh, dtype=np.float64).reshape(-1, 4)
        n = len(xywh)
        image = np.asarray(self.image, dtype=np.int64).reshape(-1)
        label = np.asarray(self.label, dtype=np.int64).reshape(-1)
        score = None if self.score is None else np.asarray(self.score, dtype=np.float64).reshape(-1)
        area = xywh[:, 2] * xywh[:, 3] if self.area is None else np.asarray(self.area, np.float64).reshape(-1)
        for name, arr in (("image", image), ("label", label), ("score", score), ("area", area)):
            if arr is not None and len(arr) != n:
                raise ValueError(f"Boxes.{name} has {len(arr)} rows and xywh {n}")
        if not np.isfinite(xywh).all() or (score is not None and not np.isfinite(score).all()):
            raise ValueError("box coordinates and scores must be finite")
        for name, arr in (("image", image), ("label", label), ("xywh", xywh), ("score", score), ("area", area)):
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.xywh)

    @classmethod
    def from_xywh(cls, image: ArrayLike, label: ArrayLike, xywh: ArrayLike, score: ArrayLike | None = None,
                  area: ArrayLike | None = None) -> Boxes:
        """Boxes from COCO ``[x, y, width, height]`` rows."""
        return cls(image, label, xywh, score, area)

    @classmethod
    def from_xyxy(cls, image: ArrayLike, label: ArrayLike, xyxy: ArrayLike, score: ArrayLike | None = None,
                  area: ArrayLike | None = None) -> Boxes:
        """Boxes from ``[x1, y1, x2, y2]`` rows."""
        b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        return cls(image, label, np.column_stack([b[:, :2], b[:, 2:] - b[:, :2]]), score, area)


def _group_starts(keys: np.ndarray) -> np.ndarray:
    """Start offsets of the runs of equal values in sorted ``keys``."""
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


def _rank_in_runs(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of sorted ``keys``."""
    starts = _group_starts(keys)
    lengths = np.diff(np.r_[starts, len(keys)])
    return np.arange(len(keys)) - np.repeat(starts, lengths)


def _corners(xywh: np.ndarray) -> tuple[np.ndarray, ...]:
    """x1, y1, x1 + w, y1 + h and w * h as contiguous columns (the terms of pycocotools' ``bbIou``)."""
    x, y, w, h = (np.ascontiguousarray(xywh[:, i]) for i in range(4))
    return x, y, w + x, h + y, w * h


def _pair_iou(d: tuple[np.ndarray, ...], g: tuple[np.ndarray, ...]) -> np.ndarray:
    """IoU of paired boxes given as ``_corners``, with the floating-point operations of ``bbIou`` (no crowd)."""
    w = np.fmin(d[2], g[2]) - np.fmax(d[0], g[0])
    h = np.fmin(d[3], g[3]) - np.fmax(d[1], g[1])
    inter = w * h
    return np.divide(inter, d[4] + g[4] - inter, out=np.zeros(len(w)), where=(w > 0) & (h > 0))


def _match(d_box: np.ndarray, d_key: np.ndarray, g_box: np.ndarray, g_key: np.ndarray, g_ignore: np.ndarray,
           thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching of every (area range, IoU threshold) configuration at once.

    Detections are sorted by (group key, rank); ground truth by (group key, input order); ``g_ignore`` is
    (A, G). Returns (matched, matched_gt_ignored), both (D, A * T) booleans, configuration ``a * T + t``."""
    n_a, n_t = len(g_ignore), len(thresholds)
    n_c, n_d = n_a * n_t, len(d_key)
    matched = np.zeros((n_d, n_c), bool)
    matched_ignored = np.zeros((n_d, n_c), bool)
    if n_d == 0 or len(g_key) == 0:
        return matched, matched_ignored
    # candidate (detection, ground truth) pairs of the same group, detection-major
    lo = np.searchsorted(g_key, d_key, "left")
    count = np.searchsorted(g_key, d_key, "right") - lo
    pair_d = np.repeat(np.arange(n_d), count)
    pair_g = lo[pair_d] + np.arange(len(pair_d)) - np.repeat(np.cumsum(count) - count, count)
    dc, gc = _corners(d_box), _corners(g_box)
    iou = _pair_iou([c[pair_d] for c in dc], [c[pair_g] for c in gc])
    keep = iou >= thresholds.min()  # a pair below every threshold never takes part in a match
    pair_d, pair_g, iou = pair_d[keep], pair_g[keep], iou[keep]
    if len(pair_d) == 0:
        return matched, matched_ignored
    # greedy step of a detection = its rank among the detections of its group that have candidates; in a
    # step, detections with one candidate come first, then those with several, their pairs by IoU then
    # ground-truth order: the last eligible pair is pycocotools' choice among ground truth of one kind
    first = _group_starts(pair_d)  # pair_d is sorted
    cand = pair_d[first]
    n_cand = np.diff(np.r_[first, len(pair_d)])
    which = np.repeat(np.arange(len(cand)), n_cand)
    block = (_rank_in_runs(d_key[cand]) * 2 + (n_cand > 1))[which]
    order = np.lexsort((pair_g, iou, pair_d, block))
    pair_d, pair_g, iou, block = pair_d[order], pair_g[order], iou[order], block[order]
    bounds = np.searchsorted(block, np.arange(block[-1] + 2))

    thr = np.tile(thresholds, n_a)  # (C,)
    ig_c = np.repeat(g_ignore, n_t, axis=0).T.copy()  # (G, C)
    g_matched = np.zeros((len(g_key), n_c), bool)
    for b in range(len(bounds) - 1):
        s, e = bounds[b], bounds[b + 1]
        if s == e:
            continue
        pd, pg = pair_d[s:e], pair_g[s:e]  # the ground truth of different detections of a step differ
        elig = iou[s:e, None] >= thr  # (P, C)
        if b >= 2:
            elig &= ~g_matched[pg]
        ign = ig_c[pg]
        if b % 2 == 0:  # one candidate per detection: it is the match when eligible
            g_matched[pg] |= elig
            matched[pd] = elig
            matched_ignored[pd] = elig & ign
            continue
        # a non-ignored ground truth beats an ignored one, then the last (best IoU, later) pair wins
        n_p = e - s
        seg = _group_starts(pd)
        key = np.where(elig, np.arange(n_p)[:, None] + n_p * ~ign, -1)
        best = np.maximum.reduceat(key, seg, axis=0)  # (S, C)
        g_matched[pg] |= elig & (key == np.repeat(best, np.diff(np.r_[seg, n_p]), axis=0))
        matched[pd[seg]] = best >= 0
        matched_ignored[pd[seg]] = (best >= 0) & (best < n_p)
    return matched, matched_ignored


def _envelope(hit: np.ndarray, counted: np.ndarray, label: np.ndarray, n_k: int,
              need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' interpolated precision at the recall thresholds, and the TP counts, per (row, label).

    ``hit`` / ``counted`` (rows, D): TPs and non-ignored detections, columns in accumulation order (by
    ``label``, 0..n_k-1, then -score); ``need`` (rows, n_k, R): TPs needed to reach each recall threshold.
    Only TPs matter: the precision envelope at a threshold is the best precision at or after the first TP
    reaching it (between TPs precision only drops), 0 where it is never reached."""
    n_rows, n_r = len(hit), need.shape[-1]
    n_seg = n_rows * n_k
    tp_row, tp_col = np.divmod(np.flatnonzero(hit), hit.shape[1])  # segment by segment, columns in order
    tp_seg = tp_row * n_k + label[tp_col]
    n_tp = np.bincount(tp_seg, minlength=n_seg)
    first = np.cumsum(n_tp) - n_tp
    tp_count = np.arange(1, len(tp_seg) + 1) - first[tp_seg]
    tp_fp = np.zeros((n_rows, hit.shape[1] + 1), np.int32)  # int32: several times faster than int64
    np.cumsum(counted, axis=1, dtype=np.int32, out=tp_fp[:, 1:])
    label_start = np.searchsorted(label, np.arange(n_k))
    tp_fp = tp_fp[tp_row, tp_col + 1] - tp_fp[:, label_start][tp_row, label[tp_col]]
    # each segment's TP precisions (pycocotools: tp / (fp + tp + eps)), then a 0 standing for "none"
    pr = np.zeros(len(tp_seg) + n_seg)
    pr[np.arange(len(tp_seg)) + tp_seg] = tp_count / (tp_fp + _EPS)
    need = need.reshape(n_seg, n_r)
    start = first + np.arange(n_seg)
    end = (start + n_tp)[:, None]
    at = np.where(need <= n_tp[:, None], start[:, None] + np.maximum(need, 1) - 1, end)
    piece = np.maximum.reduceat(pr, np.concatenate([at, end], axis=1).ravel())
    piece = piece.reshape(n_seg, n_r + 1)[:, :n_r]
    prec = np.maximum.accumulate(piece[:, ::-1], axis=1)[:, ::-1]
    return prec.reshape(n_rows, n_k, n_r), n_tp.reshape(n_rows, n_k)


def coco_eval_arrays(truth: Boxes, predictions: Boxes, n_labels: int, *, iou_thresholds: ArrayLike | None = None,
                     max_detections: Sequence[int] = (1, 10, 100)) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' ``eval['precision']`` (T, 101, K, 4, M) and ``eval['recall']`` (T, K, 4, M), -1 where a
    label has no ground truth in the area range."""
    thresholds = IOU_THRESHOLDS if iou_thresholds is None else np.asarray(iou_thresholds, np.float64).ravel()
    max_dets = sorted(int(m) for m in max_detections)
    if predictions.score is None:
        raise ValueError("predictions need scores")
    if not len(thresholds) or not max_dets or max_dets[0] < 1:
        raise ValueError("need at least one IoU threshold and positive max_detections")
    for name, b in (("truth", truth), ("predictions", predictions)):
        if len(b) and (b.label.min() < 0 or b.label.max() >= n_labels):
            raise ValueError(f"{name} labels must lie in 0..{n_labels - 1}")
        if len(b) and b.image.min() < 0:
            raise ValueError(f"{name} image indices must be >= 0")
    n_t, n_r, n_k, n_a, n_m = len(thresholds), len(RECALL_THRESHOLDS), n_labels, len(AREA_RANGES), len(max_dets)
    n_img = 1 + max(int(truth.image.max(initial=-1)), int(predictions.image.max(initial=-1)))
    lo_hi = np.array(list(AREA_RANGES.values()))

    # ground truth: by (label, image), input order inside; ignore flags per area range
    g_key = truth.label * n_img + truth.image
    g_order = np.argsort(g_key, kind="stable")
    g_key, g_box, g_area, g_label = g_key[g_order], truth.xywh[g_order], truth.area[g_order], truth.label[g_order]
    g_ignore = (g_area < lo_hi[:, :1]) | (g_area > lo_hi[:, 1:])  # (A, G)
    n_regular = np.stack([np.bincount(g_label[~ig], minlength=n_k) for ig in g_ignore], axis=1)  # (K, A): npig

    # detections: by (label, image, -score, input order), cut to max_dets[-1] per group
    d_key = predictions.label * n_img + predictions.image
    d_order = np.lexsort((np.arange(len(predictions)), -predictions.score, d_key))
    d_rank = _rank_in_runs(d_key[d_order])
    d_order, d_rank = d_order[d_rank < max_dets[-1]], d_rank[d_rank < max_dets[-1]]
    d_key, d_box, d_area = d_key[d_order], predictions.xywh[d_order], predictions.area[d_order]
    d_score, d_label = predictions.score[d_order], predictions.label[d_order]

    matched, matched_ignored = _match(d_box, d_key, g_box, g_key, g_ignore, np.minimum(thresholds, 1 - 1e-10))
    d_out = np.repeat((d_area[:, None] < lo_hi[:, 0]) | (d_area[:, None] > lo_hi[:, 1]), n_t, axis=1)  # (D, C)

    # accumulation order: per label, -score, then (image, rank); rows (cut, a, t), columns detections
    acc = np.lexsort((np.arange(len(d_key)), -d_score, d_label))
    d_label, d_rank, matched = d_label[acc], d_rank[acc], matched[acc]
    counted = ~np.where(matched, matched_ignored[acc], d_out[acc])  # neither an ignored det nor an ignored match
    hit = np.ascontiguousarray((counted & matched).T)  # (C, D)
    counted = np.ascontiguousarray(counted.T)
    # max-detection cut-offs that keep the same detections share one computation
    top = int(d_rank.max(initial=-1)) + 1
    cut_of_m = [min(m, top) for m in max_dets]
    cuts = sorted(set(cut_of_m))
    counted = np.concatenate([counted if c == top else counted & (d_rank < c) for c in cuts])
    hit = np.concatenate([hit if c == top else hit & (d_rank < c) for c in cuts])
    n_rows = len(cuts) * n_a * n_t
    row_a = np.tile(np.repeat(np.arange(n_a), n_t), len(cuts))

    # fewest TPs with tp / npig >= each recall threshold: rc >= r exactly where pycocotools has it
    npig = np.maximum(n_regular, 1)
    need = np.array([[np.searchsorted(np.arange(v + 1) / v, RECALL_THRESHOLDS, "left") for v in row]
                     for row in npig])[:, row_a]  # (K, rows, R)
    prec = np.empty((n_rows, n_k, n_r))
    n_tp = np.empty((n_rows, n_k), np.int64)
    bounds = np.searchsorted(d_label, np.arange(n_k + 1))
    budget = max(1, _CHUNK // n_rows)  # columns per chunk of labels (bounds the int32 cumsum's memory)
    k0 = 0
    while k0 < n_k:
        k1 = max(k0 + 1, int(np.searchsorted(bounds, bounds[k0] + budget, "right")) - 1)
        s, e = bounds[k0], bounds[k1]
        prec[:, k0:k1], n_tp[:, k0:k1] = _envelope(hit[:, s:e], counted[:, s:e], d_label[s:e] - k0, k1 - k0,
                                                   need[k0:k1].transpose(1, 0, 2))
        k0 = k1
    prec = prec.reshape(len(cuts), n_a, n_t, n_k, n_r)
    rec = (n_tp / npig.T[row_a]).reshape(len(cuts), n_a, n_t, n_k)

    absent = n_regular == 0  # (K, A): pycocotools leaves -1
    precision = np.empty((n_t, n_r, n_k, n_a, n_m))
    recall = np.empty((n_t, n_k, n_a, n_m))
    for m, c in enumerate(cut_of_m):
        precision[..., m] = np.where(absent, -1.0, prec[cuts.index(c)].transpose(1, 3, 2, 0))
        recall[..., m] = np.where(absent, -1.0, rec[cuts.index(c)].transpose(1, 2, 0))
    return precision, recall


def _mean_valid(s: np.ndarray) -> float:
    s = s[s > -1]
    return float(np.mean(s)) if s.size else -1.0


def coco_box_metrics(truth: Boxes, predictions: Boxes, n_labels: int, *, n_images: int | None = None,
                     iou_thresholds: ArrayLike | None = None, max_detections: Sequence[int] = (1, 10, 100),
                     label_names: Sequence[str] | None = None) -> dict:
    """COCO bbox metrics equal to pycocotools ``COCOeval(gt, dt, "bbox")`` (every box ``iscrowd = 0``).

    Returns the twelve summary numbers (``COCO_SCALARS``; -1.0 where there is no ground truth), ``per_label``
    {name: AP, AP50, AP75, n_truth, n_predictions (all, before the per-image cut)} and ``pr_curves``
    {name: recall (``RECALL_THRESHOLDS``), precision}: pycocotools' ``precision[0.5, :, k, all, -1]``, -1 for
    a label without ground truth. AP figures use the largest of ``max_detections``, ``AR{m}`` one per entry.
    ``n_images`` only validates the image indices (images without boxes contribute nothing)."""
    if n_images is not None:
        for name, b in (("truth", truth), ("predictions", predictions)):
            if len(b) and b.image.max() >= n_images:
                raise ValueError(f"{name} image indices must lie in 0..{n_images - 1}")
    names = [str(i) for i in range(n_labels)] if label_names is None else [str(n) for n in label_names]
    if len(names) != n_labels:
        raise ValueError(f"{len(names)} label names for {n_labels} labels")
    thresholds = IOU_THRESHOLDS if iou_thresholds is None else np.asarray(iou_thresholds, np.float64).ravel()
    max_dets = sorted(int(m) for m in max_detections)
    precision, recall = coco_eval_arrays(truth, predictions, n_labels, iou_thresholds=thresholds,
                                         max_detections=max_dets)

    def at(iou: float) -> np.ndarray:
        return np.flatnonzero(np.abs(thresholds - iou) < 1e-12)

    out: dict = {
        "AP": _mean_valid(precision[:, :, :, 0, -1]),
        "AP50": _mean_valid(precision[at(0.5)][:, :, :, 0, -1]),
        "AP75": _mean_valid(precision[at(0.75)][:, :, :, 0, -1]),
    }
    for a, area in enumerate(AREA_RANGES):
        if area != "all":
            out[f"AP_{area}"] = _mean_valid(precision[:, :, :, a, -1])
    for m, max_det in enumerate(max_dets):
        out[f"AR{max_det}"] = _mean_valid(recall[:, :, 0, m])
    for a, area in enumerate(AREA_RANGES):
        if area != "all":
            out[f"AR_{area}"] = _mean_valid(recall[:, :, a, -1])
    n_truth = np.bincount(truth.label, minlength=n_labels)
    n_pred = np.bincount(predictions.label, minlength=n_labels)
    out["per_label"] = {name: {"AP": _mean_valid(precision[:, :, k, 0, -1]),
                               "AP50": _mean_valid(precision[at(0.5)][:, :, k, 0, -1]),
                               "AP75": _mean_valid(precision[at(0.75)][:, :, k, 0, -1]),
                               "n_truth": int(n_truth[k]), "n_predictions": int(n_pred[k])}
                        for k, name in enumerate(names)}
    i50 = at(0.5)[0] if len(at(0.5)) else 0
    out["pr_curves"] = {name: {"recall": RECALL_THRESHOLDS.tolist(),
                               "precision": precision[i50, :, k, 0, -1].tolist()}
                        for k, name in enumerate(names)}
    return out
