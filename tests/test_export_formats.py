"""``python -m runner.store export --format csv|coco``: a dataset's annotations as one file to hand
on. COCO written from the shapes dataset imports back to the same boxes, polygons and masks; a
prediction's confidence is its CSV ``confidence`` and its COCO ``score``."""

from __future__ import annotations

import csv
import json
import re

import dtlpy as dl
import numpy as np
import pytest

from runner import BaseModelAdapter
from runner.data import import_coco, import_digits, import_shapes
from runner.data.coco import rle_decode
from runner.export_formats import rle_encode
from runner.metrics.rasterize import annotation_mask
from runner.store import main
from tests.sample_adapters import one_each


def store(platform, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(platform.root), *args])
    out, err = capsys.readouterr()
    return code, out, err


class FirstBoxAgain(BaseModelAdapter):
    """Predicts, per item, the box of its first ground-truth annotation with its label, confidence 0.75."""

    def load(self, local_path, **kwargs):
        pass

    def save(self, local_path, **kwargs):
        pass

    def prepare_item_func(self, item):
        return item

    def predict(self, batch, **kwargs):
        out = []
        for item in batch:
            first = next(a for a in item.annotations.list() if a.type == "box")
            collection = dl.AnnotationCollection()
            collection.add(annotation_definition=dl.Box(left=first.left, top=first.top, right=first.right,
                                                         bottom=first.bottom, label=first.label),
                           model_info={"name": self.model_entity.name, "confidence": 0.75})
            out.append(collection)
        return out


@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (5, 2)])
def test_rle_counts_decode_back_to_the_mask(shape):
    rng = np.random.default_rng(sum(shape))
    for mask in (rng.random(shape) > 0.5, np.ones(shape, bool), np.zeros(shape, bool)):
        counts = rle_encode(mask)
        assert sum(counts) == mask.size
        assert (rle_decode(counts, *shape) == mask).all()


def test_coco_of_the_shapes_imports_back_to_the_same_geometry(platform, capsys, tmp_path):
    dataset = import_shapes(platform, n_images=6, size=32).dataset
    assert store(platform, capsys, "export", "shapes", str(tmp_path / "folder"))[0] == 0  # the images
    code, out, err = store(platform, capsys, "export", "shapes", str(tmp_path / "shapes.json"))  # coco, by its suffix
    assert code == 0, err
    assert "to " + str(tmp_path / "shapes.json") + " (COCO instances JSON)" in out
    coco = json.loads((tmp_path / "shapes.json").read_text())
    assert [c["name"] for c in coco["categories"]] == [label.tag for label in dataset.labels]
    assert len(coco["images"]) == 6 and {i["width"] for i in coco["images"]} == {32}

    copy = import_coco(platform, tmp_path / "shapes.json", tmp_path / "folder" / "items", "shapes-again").dataset

    def geometry(a: dict) -> str:  # the points or pixels, whatever else the JSON of each import holds
        if a["type"] == "binary":
            return annotation_mask(a, 32, 32).tobytes().hex()
        rings = [a["coordinates"]] if a["type"] == "box" else a["coordinates"]
        return repr([[(round(p["x"], 6), round(p["y"], 6)) for p in ring] for ring in rings])

    def by_file(ds):
        return {item.filename: sorted((a["type"], a["label"], geometry(a))
                                      for a in (x.to_json() for x in item.annotations.list()))
                for item in ds.items.list().all()}

    before, after = by_file(dataset), by_file(copy)
    assert before.keys() == after.keys() and sum(map(len, before.values())) > 12
    assert {kind for rows in before.values() for kind, *_ in rows} == {"box", "segment", "binary"}
    for filename, rows in before.items():
        # polygons and masks come back the same; each also carried its bbox, as COCO has every object do,
        # which the import reads as a box of its own: the boxes are those before and one per polygon or mask
        assert [r for r in after[filename] if r[0] != "box"] == [r for r in rows if r[0] != "box"]
        boxes = [r for r in after[filename] if r[0] == "box"]
        assert len(boxes) == len(rows) and all(r in boxes for r in rows if r[0] == "box")


def test_a_coco_export_keeps_the_imported_area_and_can_write_polygons_as_the_runner_draws_them(platform, capsys,
                                                                                              tmp_path):
    """COCOeval's area ranges read ``area``: an imported file's is kept, not made the box's. Polygons as
    RLE are the masks the runner scores (outline pixels in), which COCO's polygon fill would shrink."""
    dataset = import_shapes(platform, n_images=4, size=32).dataset
    assert store(platform, capsys, "export", "shapes", str(tmp_path / "folder"))[0] == 0
    assert store(platform, capsys, "export", "shapes", str(tmp_path / "shapes.json"), "--type", "box,segment")[0] == 0
    coco = json.loads((tmp_path / "shapes.json").read_text())
    boxes = [a for a in coco["annotations"] if "segmentation" not in a]
    for a in boxes:
        a["area"] = a["area"] / 2  # as a file whose area is the object's, not its box's
    (tmp_path / "halved.json").write_text(json.dumps(coco))
    import_coco(platform, tmp_path / "halved.json", tmp_path / "folder" / "items", "halved")
    assert store(platform, capsys, "export", "halved", str(tmp_path / "again.json"), "--type", "box")[0] == 0
    again = json.loads((tmp_path / "again.json").read_text())
    imported_boxes = [a for a in again["annotations"] if a["bbox"] in [b["bbox"] for b in boxes]]
    assert imported_boxes and all(a["area"] == a["bbox"][2] * a["bbox"][3] / 2 for a in imported_boxes)

    code, _out, _err = store(platform, capsys, "export", "shapes", str(tmp_path / "rle.json"), "--type", "segment",
                             "--polygons-as-rle")
    assert code == 0
    rle = json.loads((tmp_path / "rle.json").read_text())
    by_image = {i["id"]: i["file_name"] for i in rle["images"]}
    polygons = {item.filename: [a.to_json() for a in item.annotations.list() if a.type == "segment"]
                for item in dataset.items.list().all()}
    assert len(rle["annotations"]) == sum(map(len, polygons.values())) > 0
    for a in rle["annotations"]:
        mask = rle_decode(a["segmentation"]["counts"], 32, 32)
        drawn = [annotation_mask(p, 32, 32) for p in polygons["/" + by_image[a["image_id"]]]]
        assert any(np.array_equal(mask, d) for d in drawn) and a["area"] == int(mask.sum())
    code, _out, err = store(platform, capsys, "export", "shapes", str(tmp_path / "x.csv"), "--polygons-as-rle")
    assert code == 2 and "--polygons-as-rle is a COCO file's option" in err


def test_predictions_carry_their_confidence_in_csv_and_coco(platform, capsys, tmp_path):
    dataset = import_shapes(platform, n_images=4, size=32).dataset
    labels = [label.tag for label in dataset.labels][::-1]  # another order than the dataset's
    model = platform.create_model("first-box", dataset, labels=labels, configuration={"batch_size": 2})
    adapter = FirstBoxAgain(model_entity=model)
    adapter.platform = platform
    items = list(dataset.items.list().all())
    adapter.predict_items(items)

    code, out, err = store(platform, capsys, "export", "shapes", str(tmp_path / "p.csv"), "--no-ground-truth")
    assert code == 0, err
    assert "(0 ground-truth annotations, 4 predictions)" in out
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 4 and {r["confidence"] for r in rows} == {"0.75"} and {r["model"] for r in rows} == {"first-box"}
    for row in rows:
        item = dataset.items.get(item_id=row["item_id"])
        first = next(a for a in item.annotations.list() if a.type == "box" and "model" not in a.metadata["system"])
        assert [float(row[k]) for k in ("left", "top", "right", "bottom")] == \
            [first.left, first.top, first.right, first.bottom]
        assert row["label"] == first.label and row["filename"] == item.filename and row["coordinates"] == ""

    code, out, err = store(platform, capsys, "export", "shapes", str(tmp_path / "p-coco"), "--format", "coco",
                           "--model", "first-box", "--no-ground-truth")
    assert code == 0, err
    results = json.loads((tmp_path / "p-coco").read_text())
    annotations = results["annotations"]
    assert len(annotations) == 4 and {(a["score"], a["model"]) for a in annotations} == {(0.75, "first-box")}
    assert all(a["area"] == a["bbox"][2] * a["bbox"][3] > 0 for a in annotations)
    # the dataset's labels number the categories, whatever order the version has them in: as in its ground truth
    assert [c["name"] for c in results["categories"]] == [label.tag for label in dataset.labels] != labels

    # ground truth and predictions in one COCO file: refused, as COCOeval reads them from two
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = store(platform, capsys, "export", "shapes", str(tmp_path / "both.json"))
    assert code == 2 and "COCO keeps ground truth and detections in separate files" in err, err
    assert re.search(r"this export holds \d+ ground-truth annotations and 4 predictions", err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # the boxes alone of the ground truth (each shape is also a polygon and a mask), and pycocotools reads both
    code, out, err = store(platform, capsys, "export", "shapes", str(tmp_path / "truth.json"), "--no-predictions",
                           "--type", "box")
    boxes = sum(a.type == "box" and "model" not in a.metadata["system"] for i in items for a in i.annotations.list())
    assert code == 0 and f"with ground truth, of type box ({boxes} ground-truth annotations, 0 predictions)" in out, out
    from pycocotools.coco import COCO

    truth = COCO(str(tmp_path / "truth.json"))
    detections = truth.loadRes(results["annotations"])
    assert len(truth.getAnnIds()) == boxes > 4 and len(detections.getAnnIds()) == 4
    assert {tuple(a["bbox"]) for a in annotations} <= {tuple(a["bbox"]) for a in truth.dataset["annotations"]}
    assert truth.dataset["categories"] == results["categories"]
    for args, message in ((["--no-ground-truth", "--no-predictions"], "leave no annotation to export"),
                          (["--model", "first-box", "--no-predictions"], "which --no-predictions leaves out"),
                          (["--type", "bx"], "--type 'bx' is not an annotation type (did you mean box?)")):
        code, out, err = store(platform, capsys, "export", "shapes", str(tmp_path / "x.csv"), *args)
        assert code == 2 and message in err, err
        assert not (tmp_path / "x.csv").exists()


def test_every_item_has_a_csv_row_and_classes_alone_are_refused_as_coco(platform, capsys, tmp_path):
    dataset = import_digits(platform).dataset
    code, out, err = store(platform, capsys, "export", "digits", str(tmp_path / "test.csv"), "--dir", "/test")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "test.csv").open()))
    n_test = platform.count_items(dataset, {"filter": {"dir": "/test"}})
    assert len(rows) == n_test and all(r["type"] == "class" and r["label"] in "0123456789" for r in rows)
    code, out, err = store(platform, capsys, "export", "digits", str(tmp_path / "preds.csv"), "--dir", "/test",
                           "--no-ground-truth")  # nothing predicted: every item still listed, its cells empty
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "preds.csv").open()))
    assert len(rows) == n_test and all(r["label"] == r["type"] == "" and r["item_id"] for r in rows)

    for args, message in ((["digits.json"], "none of these annotations has a COCO instance form: 1797 of type class"),
                          (["test.csv"], "already exists"),
                          (["x.csv", "--dir", "/nothere"], "no item of dataset 'digits' matches")):
        before = sorted(p.name for p in tmp_path.iterdir())
        code, out, err = store(platform, capsys, "export", "digits", str(tmp_path / args[0]), *args[1:])
        assert code == 2 and message in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no partial file left


class SquareInTheCorner(FirstBoxAgain):
    def predict(self, batch, **kwargs):
        return one_each(batch, lambda: dl.Box(left=0, top=0, right=4, bottom=4, label="square"), self.model_entity.name)


def test_on_new_images_the_versions_labels_number_the_categories(platform, capsys, tmp_path):
    """A dataset without labels (a folder of new images): the categories are the version's labels in
    its order, whichever appear in its predictions, so exports of it before and after new images agree."""
    from PIL import Image

    from runner.data import import_unlabeled_images

    (tmp_path / "new").mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(tmp_path / "new" / f"n{i}.png")
    dataset = import_unlabeled_images(platform, tmp_path / "new", "new").dataset
    model = platform.create_model("corner", None, labels=["triangle", "circle", "square"])
    adapter = SquareInTheCorner(model_entity=model)
    adapter.platform = platform
    adapter.predict_items(list(dataset.items.list().all()))
    code, out, err = store(platform, capsys, "export", "new", str(tmp_path / "new.json"), "--model", "corner")
    assert code == 0, err
    coco = json.loads((tmp_path / "new.json").read_text())
    assert coco["categories"] == [{"id": 1, "name": "triangle"}, {"id": 2, "name": "circle"}, {"id": 3, "name": "square"}]
    assert {a["category_id"] for a in coco["annotations"]} == {3} and len(coco["annotations"]) == 3
    platform.create_model("idle", None, labels=["square"])
    code, out, err = store(platform, capsys, "export", "new", str(tmp_path / "idle.csv"), "--model", "idle")
    assert code == 0 and ("note: idle has no predictions on these items (python -m runner pipeline=predict "
                          "model.name=idle dataset.name=new dataset.source=null pipeline.predict_subset=null stores "
                          "some)") in out, out
