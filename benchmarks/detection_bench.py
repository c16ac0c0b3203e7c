"""COCO bbox evaluation: ``runner.metrics.detection.coco_box_metrics`` against pycocotools and faster-coco-eval.

    python benchmarks/detection_bench.py            # 2,000 images, ~15k truth / ~24k predicted boxes, 10 labels
    python benchmarks/detection_bench.py --quick    # 300 images

Times evaluate + accumulate + summarize (best of 3) of each side by side in this process, from prepared inputs
(numpy arrays for ours, loaded ``COCO`` objects for the others), and checks the twelve numbers against
pycocotools. Target: no slower than faster-coco-eval (or <= 0.5 s when it is not installed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402  (sets DATALOOP_PATH to a temp folder before runner loads)
import numpy as np  # noqa: E402

NAME = "detection"


def make_workload(n_images: int = 2000, n_labels: int = 10, seed: int = 0):
    """Realistic synthetic detection data: truth boxes of every size on 640x480 images (Poisson 7.5 per image,
    unbalanced labels); predictions = 85% of the truth jittered (10% of those twice, 5% with a wrong label)
    plus Poisson 4.8 false positives per image; scores uniform."""
    from runner.metrics.detection import Boxes

    rng = np.random.default_rng(seed)
    width, height = 640.0, 480.0

    def random_boxes(n):
        side = np.exp(rng.uniform(np.log(6), np.log(400), n))
        aspect = np.exp(rng.normal(0, 0.4, n))
        w = np.clip(side * np.sqrt(aspect), 1, width)
        h = np.clip(side / np.sqrt(aspect), 1, height)
        return np.round(np.column_stack([rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]), 2)

    p_label = 1 / np.sqrt(np.arange(1, n_labels + 1))
    p_label /= p_label.sum()
    g_img = np.repeat(np.arange(n_images), rng.poisson(7.5, n_images))
    g_label = rng.choice(n_labels, len(g_img), p=p_label)
    g_box = random_boxes(len(g_img))

    hit = np.flatnonzero(rng.random(len(g_img)) < 0.85)
    hit = np.concatenate([hit, hit[rng.random(len(hit)) < 0.10]])
    box = g_box[hit]
    shift = rng.normal(0, 0.08, (len(hit), 2)) * box[:, 2:]
    scale = np.exp(rng.normal(0, 0.1, (len(hit), 2)))
    p_box = np.round(np.column_stack([box[:, :2] + shift, box[:, 2:] * scale]), 2)
    p_label_ = g_label[hit].copy()
    wrong = rng.random(len(hit)) < 0.05
    p_label_[wrong] = rng.integers(0, n_labels, wrong.sum())
    fp_img = np.repeat(np.arange(n_images), rng.poisson(4.8, n_images))
    p_img = np.concatenate([g_img[hit], fp_img])
    p_label_ = np.concatenate([p_label_, rng.choice(n_labels, len(fp_img), p=p_label)])
    p_box = np.concatenate([p_box, random_boxes(len(fp_img))])
    order = rng.permutation(len(p_img))
    truth = Boxes.from_xywh(g_img, g_label, g_box)
    preds = Boxes.from_xywh(p_img[order], p_label_[order], p_box[order], rng.random(len(p_img)))
    return truth, preds


def coco_dicts(truth, preds, n_images: int, n_labels: int) -> tuple[dict, list[dict]]:
    """The COCO ground-truth dataset and result list of the same boxes (ids: index + 1)."""
    gt = {"images": [{"id": i + 1} for i in range(n_images)],
          "categories": [{"id": k + 1, "name": str(k)} for k in range(n_labels)],
          "annotations": [{"id": j + 1, "image_id": int(i) + 1, "category_id": int(c) + 1, "bbox": b.tolist(),
                           "area": float(a), "iscrowd": 0}
                          for j, (i, c, b, a) in enumerate(zip(truth.image, truth.label, truth.xywh, truth.area, strict=True))]}
    dt = [{"image_id": int(i) + 1, "category_id": int(c) + 1, "bbox": b.tolist(), "score": float(s)}
          for i, c, b, s in zip(preds.image, preds.label, preds.xywh, preds.score, strict=True)]
    return gt, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 images instead of 2,000")
    ap.add_argument("--images", type=int, default=None)
    args = ap.parse_args()
    n_images = args.images or (300 if args.quick else 2000)
    n_labels = 10

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from runner.metrics.detection import COCO_SCALARS, coco_box_metrics

    truth, preds = make_workload(n_images, n_labels, seed=0)
    print(f"# {C.machine_line()}")
    print(f"# workload: {n_images} images, {len(truth)} truth boxes, {len(preds)} predicted boxes, "
          f"{n_labels} labels (seed 0)")
    gt_dict, dt_list = coco_dicts(truth, preds, n_images, n_labels)
    sink = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dt_list)
    print(f"# pycocotools COCO() + loadRes from dicts: {time.perf_counter() - t:.3f}s (not counted below: the "
          f"baselines start from loaded COCO objects, ours from the arrays)")

    def ours():
        return coco_box_metrics(truth, preds, n_labels, n_images=n_images)

    def evaluate_with(eval_class, gt, dt):
        """evaluate + accumulate + summarize of a COCOeval-like class; its twelve numbers."""
        with contextlib.redirect_stdout(sink):
            e = eval_class(gt, dt, "bbox")
            e.evaluate()
            e.accumulate()
            e.summarize()
        return e.stats

    def pycoco():
        return evaluate_with(COCOeval, coco_gt, coco_dt)

    t_ours, res = C.best_of(3, ours)
    t_pyc, stats = C.best_of(3, pycoco)
    ours_stats = np.array([res[k] for k in COCO_SCALARS])
    diff = float(np.abs(ours_stats - stats).max())
    print("\n## evaluate + accumulate + summarize, best of 3")
    print(f"  ours (numpy):     {t_ours:7.3f}s")
    print(f"  pycocotools:      {t_pyc:7.3f}s   ours x{t_pyc / t_ours:.1f} faster")

    t_fce = None
    try:
        from faster_coco_eval import COCO as FCOCO
        from faster_coco_eval import COCOeval_faster
    except ImportError:
        print("  faster-coco-eval: not installed")
    else:
        import logging

        import faster_coco_eval

        logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
        f_gt_dict, f_dt_list = coco_dicts(truth, preds, n_images, n_labels)  # fresh: pycocotools edits its own
        with contextlib.redirect_stdout(sink):
            f_gt = FCOCO(f_gt_dict)
            f_dt = f_gt.loadRes(f_dt_list)

        def faster():
            return evaluate_with(COCOeval_faster, f_gt, f_dt)

        t_fce, f_stats = C.best_of(3, faster)
        f_diff = float(np.abs(np.asarray(f_stats[:12]) - stats).max())
        print(f"  faster-coco-eval: {t_fce:7.3f}s   ours x{t_fce / t_ours:.1f} faster "
              f"(version {faster_coco_eval.__version__}; its max |diff| vs pycocotools {f_diff:.1e})")

    print("\n## the twelve numbers (ours | pycocotools)")
    for name, a, b in zip(COCO_SCALARS, ours_stats, stats, strict=True):
        print(f"  {name:10s} {a:.12f} | {b:.12f}")
    print(f"  max |ours - pycocotools| = {diff:.3e}")

    target = t_fce if t_fce is not None else 0.5
    target_txt = f"<= faster-coco-eval {t_fce:.3f}s" if t_fce is not None else "<= 0.5s (faster-coco-eval n/a)"
    ok = t_ours <= target and diff <= 1e-9
    ratio = f", x{t_pyc / t_ours:.1f} vs pycocotools" + (f", x{t_fce / t_ours:.1f} vs faster-coco-eval"
                                                            if t_fce is not None else "")
    C.print_results([C.result(NAME, f"coco bbox eval of {n_images} images,", f"{t_ours:.3f}s{ratio}, "
                              f"max |diff| {diff:.1e}", f"{target_txt}, |diff| <= 1e-9", ok)])


if __name__ == "__main__":
    main()
