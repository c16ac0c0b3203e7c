"""Importers into the local platform, on real files and a real SQLite store in tmp_path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dtlpy as dl
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from sklearn.datasets import load_digits

from runner.data import (
    ImportResult,
    import_coco,
    import_dataloop_export,
    import_digits,
    import_image_folder,
    import_shapes,
    import_unlabeled_images,
)
from runner.data.coco import rle_decode
from runner.data.digits import split_indices
from runner.data.importing import ImportRecord, store_records
from runner.errors import DataImportError
from runner.platform.local import LocalPlatform

DIGITS = load_digits()


# -- helpers ------------------------------------------------------------------------------------

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def write_image(path: Path, size=(12, 9), value=0, fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, fmt)
    return path


def stored(platform: LocalPlatform, dataset) -> dict[str, tuple[dict, list[dict]]]:
    """filename -> (item JSON, its annotation JSON), straight from the store."""
    items = [j for page in platform.store.iter_items(dataset.id, None) for j in page]
    annotations = platform.store.annotations_of([j["id"] for j in items])
    return {j["filename"]: (j, annotations[j["id"]]) for j in items}


def item_count(platform: LocalPlatform, name: str) -> int:
    dataset = platform.find_dataset(name)
    return 0 if dataset is None else platform.store.count_items(dataset.id, None)


def shape(annotation: dict) -> tuple:
    """What must survive a round trip: type, label, coordinates, user metadata."""
    return (annotation["type"], annotation["label"], json.dumps(annotation.get("coordinates"), sort_keys=True),
            json.dumps(annotation["metadata"].get("user"), sort_keys=True))


def rle_encode(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: column-major runs, starting with background."""
    counts, current, run = [], False, 0
    for value in mask.flatten(order="F"):
        if bool(value) != current:
            counts.append(run)
            current, run = bool(value), 0
        run += 1
    return counts + [run]


# -- digits -------------------------------------------------------------------------------------

def test_digits_items_labels_and_annotations(platform):
    result = import_digits(platform)
    assert isinstance(result, ImportResult) and (result.added, result.skipped) == (1797, 0)
    dataset = platform.get_dataset(name="digits")
    assert [label.tag for label in dataset.labels] == [str(d) for d in range(10)]
    items = stored(platform, dataset)
    assert len(items) == 1797
    for filename, (item, anns) in items.items():
        index = int(filename.rsplit("-", 1)[1].split(".")[0])
        split = item["dir"].lstrip("/")
        assert filename == f"/{split}/digit-{index:05d}.png"
        assert item["metadata"]["system"]["tags"] == {split: True}
        assert item["metadata"]["system"]["width"] == item["metadata"]["system"]["height"] == 8
        assert len(anns) == 1
        assert anns[0]["type"] == "class" and anns[0]["label"] == str(DIGITS.target[index])
        assert "model" not in anns[0]["metadata"]["system"]

    # through the dtlpy entities
    pages = dataset.items.list()
    assert pages.items_count == 1797
    item = dataset.items.get(filepath=next(f for f in items if f.endswith("digit-00042.png")))
    annotations = item.annotations.list()
    assert [(a.type, a.label) for a in annotations] == [("class", str(DIGITS.target[42]))]
    pixels = item.download(save_locally=False, to_array=True)
    assert pixels.shape == (8, 8) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.rint(DIGITS.images[42] * 255 / 16).astype(np.uint8))


def test_digits_split_is_stratified_and_deterministic(tmp_path):
    first, second, other = (LocalPlatform(tmp_path / name) for name in ("a", "b", "c"))
    import_digits(first, seed=3)
    import_digits(second, seed=3)
    import_digits(other, seed=4)

    def by_dir(platform):
        out: dict[str, set[str]] = {}
        for filename, (item, _a) in stored(platform, platform.get_dataset(name="digits")).items():
            out.setdefault(item["dir"], set()).add(filename)
        return out

    assert by_dir(first) == by_dir(second)
    assert by_dir(first) != by_dir(other)
    sizes = {d: len(f) for d, f in by_dir(first).items()}
    assert sum(sizes.values()) == 1797
    for name, fraction in (("/train", 0.7), ("/validation", 0.15), ("/test", 0.15)):
        assert abs(sizes[name] - fraction * 1797) <= 10  # per-class rounding only
        indices = [int(f[-9:-4]) for f in by_dir(first)[name]]
        assert set(DIGITS.target[indices]) == set(range(10))
    # subsets can be selected by tag as well as by dir
    dataset = first.get_dataset(name="digits")
    tagged = dataset.items.list(filters=dl.Filters(field="metadata.system.tags.validation", values=True))
    assert tagged.items_count == sizes["/validation"]
    assert split_indices(DIGITS.target, 3, (0.7, 0.15, 0.15)) == split_indices(DIGITS.target, 3, (0.7, 0.15, 0.15))


def test_digits_second_import_adds_nothing(platform):
    dataset = import_digits(platform).dataset
    again = import_digits(platform)
    assert (again.added, again.skipped) == (0, 1797)
    assert platform.store.count_items(dataset.id, None) == 1797
    assert platform.store.count_annotations(dataset.id) == 1797
    assert len(platform.get_dataset(dataset.id).labels) == 10


def test_digits_bad_split_stores_nothing(platform):
    with pytest.raises(DataImportError, match="split"):
        import_digits(platform, split=(0.5, 0.2, 0.2))
    assert platform.find_dataset("digits") is None


def test_failure_inside_the_transaction_stores_nothing(platform, monkeypatch):
    def fail(_annotations):
        raise RuntimeError("disk full")

    monkeypatch.setattr(platform.store, "insert_annotations", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        import_digits(platform)
    assert platform.find_dataset("digits") is None  # the dataset was created in the same transaction
    assert platform.store.query("SELECT COUNT(*) FROM items")[0][0] == 0


# -- image folder ---------------------------------------------------------------------------------

def test_image_folder_class_layout(platform, tmp_path, caplog):
    folder = tmp_path / "pets"
    write_image(folder / "cat" / "a.png", (12, 9), 1)
    write_image(folder / "cat" / "b.jpg", (20, 10), 2)
    write_image(folder / "dog" / "c.png", (7, 5), 3)
    (folder / "dog" / "notes.txt").write_text("not an image")
    (folder / "README.md").write_text("about")
    with caplog.at_level(logging.WARNING, logger="runner.data"):
        result = import_image_folder(platform, folder)
    assert "notes.txt" in caplog.text and "README.md" in caplog.text
    assert (result.dataset.name, result.added) == ("pets", 3)
    assert [label.tag for label in result.dataset.labels] == ["cat", "dog"]
    items = stored(platform, result.dataset)
    assert {f: (i["dir"], [(a["type"], a["label"]) for a in anns]) for f, (i, anns) in items.items()} == {
        "/cat/a.png": ("/cat", [("class", "cat")]),
        "/cat/b.jpg": ("/cat", [("class", "cat")]),
        "/dog/c.png": ("/dog", [("class", "dog")]),
    }
    assert items["/cat/b.jpg"][0]["metadata"]["system"]["mimetype"] == "image/jpeg"
    item = result.dataset.items.get(filepath="/cat/b.jpg")
    assert item.download(save_locally=False, to_array=True).shape == (10, 20, 3)
    assert [a.label for a in item.annotations.list()] == ["cat"]
    assert import_image_folder(platform, folder).added == 0


def test_image_folder_split_layout(platform, tmp_path):
    folder = tmp_path / "split"
    write_image(folder / "train" / "cat" / "a.png", value=1)
    write_image(folder / "train" / "dog" / "b.png", value=2)
    write_image(folder / "val" / "dog" / "c.jpeg", value=3)
    write_image(folder / "test" / "cat" / "d.png", value=4)
    result = import_image_folder(platform, folder, "pets")
    items = stored(platform, result.dataset)
    assert {f: (i["dir"], i["metadata"]["system"]["tags"], anns[0]["label"]) for f, (i, anns) in items.items()} == {
        "/train/cat/a.png": ("/train/cat", {"train": True}, "cat"),
        "/train/dog/b.png": ("/train/dog", {"train": True}, "dog"),
        "/validation/dog/c.jpeg": ("/validation/dog", {"validation": True}, "dog"),
        "/test/cat/d.png": ("/test/cat", {"test": True}, "cat"),
    }
    assert sorted(label.tag for label in result.dataset.labels) == ["cat", "dog"]


def test_image_folder_same_name_in_two_classes_of_a_split(platform, tmp_path):
    """Per-class numbering (img0.png in every class folder) is common: each class keeps its folder."""
    folder = tmp_path / "split"
    for split in ("train", "val", "test"):
        for value, label in enumerate(("cat", "dog")):
            write_image(folder / split / label / "x.png", value=value + 1)
    dataset = import_image_folder(platform, folder).dataset
    assert sorted(stored(platform, dataset)) == [f"/{split}/{label}/x.png" for split in ("test", "train", "validation")
                                                 for label in ("cat", "dog")]
    by_dir = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "subsets" / "by_dir.yaml"))
    for split in ("train", "validation", "test"):
        assert platform.count_items(dataset, by_dir[split]) == 2


def test_image_folder_labels_are_merged(platform, tmp_path):
    write_image(tmp_path / "one" / "cat" / "a.png", value=1)
    write_image(tmp_path / "two" / "dog" / "b.png", value=2)
    write_image(tmp_path / "two" / "bird" / "c.png", value=3)
    first = import_image_folder(platform, tmp_path / "one", "pets").dataset
    merged = import_image_folder(platform, tmp_path / "two", "pets").dataset
    assert [label.tag for label in merged.labels] == ["cat", "bird", "dog"]
    assert merged.labels[0].color == first.labels[0].color
    assert platform.store.count_items(merged.id, None) == 3


def test_image_folder_nested_folders_and_empty_classes_are_reported(platform, tmp_path, caplog):
    """One level of class folders: a folder inside one is not read, and says so (not 'not an image file');
    an empty class folder still gives its label, with a warning naming it."""
    folder = tmp_path / "photos"
    write_image(folder / "cat" / "a.png", value=1)
    write_image(folder / "cat" / "more" / "x.png", value=2)
    (folder / "bird").mkdir()
    (folder / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    write_image(folder / ".thumbnails" / "t.png", value=3)
    with caplog.at_level(logging.WARNING, logger="runner.data"):
        result = import_image_folder(platform, folder)
    assert sorted(stored(platform, result.dataset)) == ["/cat/a.png"]
    assert [label.tag for label in result.dataset.labels] == ["bird", "cat"]
    messages = [r.getMessage() for r in caplog.records]
    nested = [m for m in messages if str(folder / "cat" / "more") in m]
    assert len(nested) == 1 and "not an image file" not in nested[0]
    assert "folder inside the class folder cat is not read" in nested[0]
    assert any(str(folder / "bird") in m and "holds no images" in m and "'bird'" in m for m in messages)
    assert not any("cat" in m and "holds no images" in m for m in messages)
    assert not any(".DS_Store" in m or ".thumbnails" in m for m in messages)  # hidden: skipped silently


@pytest.mark.parametrize("corrupt", [b"definitely not a png", "truncated"])
def test_image_folder_corrupt_image_stores_nothing(platform, tmp_path, corrupt):
    folder = tmp_path / "pets"
    write_image(folder / "cat" / "a.png", value=1)
    import_image_folder(platform, folder)
    assert item_count(platform, "pets") == 1
    write_image(folder / "dog" / "b.png", value=2)
    if corrupt == "truncated":  # a JPEG with half its data: verify() passes, only load() notices
        bad = write_image(folder / "dog" / "broken.jpg", (64, 64), 3)
        bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    else:
        (bad := folder / "dog" / "broken.png").write_bytes(corrupt)
    with pytest.raises(DataImportError, match=bad.name):
        import_image_folder(platform, folder)
    assert item_count(platform, "pets") == 1
    assert [label.tag for label in platform.get_dataset(name="pets").labels] == ["cat"]


@pytest.mark.parametrize("importer", ["image_folder", "unlabeled_images", "dataloop_export"])
def test_every_unreadable_file_of_an_import_is_named_in_one_error(platform, tmp_path, importer):
    root = tmp_path / "src"
    folder = root / "items" if importer == "dataloop_export" else root
    write_image(folder / "cat" / "a.png", value=1)
    for name in ("b.png", "c.png", "d.png"):
        (folder / "dog" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "dog" / name).write_bytes(b"not a png")
    if importer == "dataloop_export":
        (root / "json").mkdir()
    imports = {"image_folder": import_image_folder, "unlabeled_images": import_unlabeled_images,
               "dataloop_export": import_dataloop_export}
    with pytest.raises(DataImportError) as err:
        imports[importer](platform, root, dataset_name="pets")
    assert err.value.what.startswith("3 files cannot be read, so nothing was imported: cannot decode the image "), \
        err.value.what
    assert all(str(folder / "dog" / name) in err.value.where for name in ("b.png", "c.png", "d.png"))
    assert platform.find_dataset("pets") is None


# -- COCO -----------------------------------------------------------------------------------------

@pytest.fixture
def coco(tmp_path):
    """A COCO file with boxes, polygons, an RLE mask and an image without annotations."""
    images = tmp_path / "images"
    write_image(images / "one.png", (40, 30), 1)
    write_image(images / "sub" / "two.jpg", (20, 16), 2)
    write_image(images / "three.png", (10, 10), 3)
    mask = np.zeros((16, 20), bool)
    mask[2:9, 3:15] = True
    mask[12, 0] = True
    data = {
        "info": {"description": "test"},
        "categories": [{"id": 1, "name": "cat"}, {"id": 7, "name": "dog"}],
        "images": [{"id": 100, "file_name": "one.png", "width": 40, "height": 30},
                   {"id": 200, "file_name": "sub/two.jpg", "width": 20, "height": 16},
                   {"id": 300, "file_name": "three.png"}],
        "annotations": [
            {"id": 1, "image_id": 100, "category_id": 1, "bbox": [2, 3, 10, 5], "iscrowd": 0},
            {"id": 2, "image_id": 100, "category_id": 7, "bbox": [5.5, 5, 4, 4], "iscrowd": 0, "area": 12.5,
             "segmentation": [[5, 5, 9, 5, 9, 9, 5, 9], [0, 0, 2, 0, 1, 2]]},
            {"id": 3, "image_id": 200, "category_id": 7, "iscrowd": 1,
             "segmentation": {"size": [16, 20], "counts": rle_encode(mask)}},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path, images, data, mask


def test_rle_decode_is_column_major():
    # 2 rows x 3 columns [[0, 1, 1], [0, 0, 1]] -> columns (0, 0), (1, 0), (1, 1) -> runs 2, 1, 1, 2
    expected = np.array([[0, 1, 1], [0, 0, 1]], bool)
    np.testing.assert_array_equal(rle_decode([2, 1, 1, 2], 2, 3), expected)
    assert rle_encode(expected) == [2, 1, 1, 2]


def test_coco_boxes_polygons_masks(platform, coco):
    path, images, _data, mask = coco
    result = import_coco(platform, path, images, dir="/coco")
    assert (result.dataset.name, result.added) == ("instances", 3)
    assert [label.tag for label in result.dataset.labels] == ["cat", "dog"]
    items = stored(platform, result.dataset)
    assert sorted(items) == ["/coco/one.png", "/coco/sub/two.jpg", "/coco/three.png"]
    one, one_annotations = items["/coco/one.png"]
    assert one["metadata"]["user"]["coco"] == {"image_id": 100}
    assert [(a["type"], a["label"], a["metadata"]["user"]["coco"]["annotation_id"]) for a in one_annotations] == [
        ("box", "cat", 1), ("box", "dog", 2), ("segment", "dog", 2), ("segment", "dog", 2)]
    box = one_annotations[0]["coordinates"]
    assert [(p["x"], p["y"]) for p in box] == [(2, 3), (12, 8)]
    assert [(p["x"], p["y"]) for p in one_annotations[2]["coordinates"][0]] == [(5, 5), (9, 5), (9, 9), (5, 9)]
    assert len(one_annotations[3]["coordinates"][0]) == 3
    assert "iscrowd" not in one_annotations[0]["metadata"]["user"]
    # the file's area (COCOeval's size ranges read it) where it gives one
    assert [a["metadata"]["user"]["coco"].get("area") for a in one_annotations] == [None, 12.5, 12.5, 12.5]
    assert items["/coco/three.png"][1] == []

    # through dtlpy: the mask decodes back to the RLE's pixels
    item = result.dataset.items.get(filepath="/coco/sub/two.jpg")
    assert item.download(save_locally=False, to_array=True).shape == (16, 20, 3)
    (annotation,) = item.annotations.list()
    assert (annotation.type, annotation.label) == ("binary", "dog")
    assert annotation.metadata["user"]["iscrowd"] == 1
    np.testing.assert_array_equal(annotation.annotation_definition.geo, mask)
    # masks are painted in their label's colour, as on Dataloop
    rgba = dl.Segmentation.from_coordinates(items["/coco/sub/two.jpg"][1][0]["coordinates"])
    assert tuple(rgba[mask][0][:3]) == tuple(result.dataset.labels[1].rgb)
    boxes = result.dataset.items.get(filepath="/coco/one.png").annotations.list()
    assert [(a.type, a.label) for a in boxes][:2] == [("box", "cat"), ("box", "dog")]
    assert (boxes[0].left, boxes[0].top, boxes[0].right, boxes[0].bottom) == (2, 3, 12, 8)

    again = import_coco(platform, path, images, dir="/coco")
    assert (again.added, again.skipped) == (0, 3)
    assert platform.store.count_annotations(result.dataset.id) == 5


def _unknown_category(d):
    d["annotations"][1]["category_id"] = 99


def _unknown_image(d):
    d["annotations"][0]["image_id"] = 999


def _short_bbox(d):
    d["annotations"][1]["bbox"] = [1, 2, 3]


def _missing_file(d):
    d["images"][1]["file_name"] = "sub/nope.jpg"


def _bad_rle(d):
    d["annotations"][2]["segmentation"]["counts"] = [5, 5]


@pytest.mark.parametrize(("mutate", "expected"), [
    (_unknown_category, r"unknown category id 99(.|\n)*annotations\[1\]"),
    (_unknown_image, r"unknown image id 999(.|\n)*annotations\[0\]"),
    (_short_bbox, r"bbox must be 4 numbers(.|\n)*annotations\[1\]"),
    (_missing_file, r"nope.jpg(.|\n)*images\[1\]"),
    (_bad_rle, r"bad RLE counts(.|\n)*annotations\[2\]"),
    (lambda d: d.pop("categories"), "not COCO JSON"),
])
def test_coco_bad_input_stores_nothing(platform, coco, mutate, expected):
    path, images, data, _mask = coco
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DataImportError, match=expected) as err:
        import_coco(platform, path, images, "coco")
    assert "instances.json" in str(err.value)
    assert platform.find_dataset("coco") is None


def test_coco_not_json(platform, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(DataImportError, match="broken.json"):
        import_coco(platform, path, tmp_path, "coco")
    assert platform.find_dataset("coco") is None


def test_coco_missing_images_folder_is_reported_once(platform, coco, tmp_path):
    """Not 'the image file nodir/one.png does not exist': the folder is what is missing."""
    path, _images, _data, _mask = coco
    with pytest.raises(DataImportError) as err:
        import_coco(platform, path, tmp_path / "nodir", "coco")
    assert (err.value.what, err.value.where) == (f"no images folder {tmp_path / 'nodir'}", str(tmp_path / "nodir"))
    assert "images_dir (dataset.images_dir)" in err.value.fix and "instances.json" in err.value.fix
    assert "one.png" not in str(err.value)
    assert platform.find_dataset("coco") is None


def test_coco_images_folder_without_any_of_the_images_is_reported_as_the_wrong_folder(platform, coco, tmp_path):
    path, images, data, _mask = coco
    write_image(tmp_path / "other" / "x.png", value=9)
    with pytest.raises(DataImportError, match=r"none of its 3 image files is in .*other, e.g. .*one\.png") as err:
        import_coco(platform, path, tmp_path / "other", "coco")
    assert "images_dir (dataset.images_dir)" in err.value.fix
    # some missing, some there: the first is named, with the count
    data["images"][0]["file_name"] = "gone.png"
    data["images"][2]["file_name"] = "lost.png"
    path.write_text(json.dumps(data))
    with pytest.raises(DataImportError, match=r"gone\.png does not exist \(2 of its 3 image files are missing: "
                                              r"gone\.png, lost\.png\)(.|\n)*images\[0\]"):
        import_coco(platform, path, images, "coco")
    assert platform.find_dataset("coco") is None


def test_coco_annotation_file_that_is_a_folder_or_missing_says_so(platform, coco, tmp_path):
    path, images, _data, _mask = coco
    with pytest.raises(DataImportError, match=r"^.* is a folder, not a file") as err:
        import_coco(platform, tmp_path, images, "coco")
    assert "annotation_file (dataset.annotation_file)" in err.value.fix
    assert str(path) in err.value.fix  # the JSON files the folder holds
    with pytest.raises(DataImportError, match=r"^no file .*nope\.json"):
        import_coco(platform, tmp_path / "nope.json", images, "coco")
    # the two swapped: the images folder given a JSON file points at annotation_file
    with pytest.raises(DataImportError, match=r"instances\.json is a file, not a folder") as err:
        import_coco(platform, path, path, "coco")
    assert f"dataset.annotation_file={path}" in err.value.fix
    assert platform.find_dataset("coco") is None


# -- Dataloop export ------------------------------------------------------------------------------

def assert_same_dataset(platform, source, copy):
    original, imported = stored(platform, source), stored(platform, copy)
    assert sorted(original) == sorted(imported)
    assert {label.tag for label in source.labels} == {label.tag for label in copy.labels}
    for filename, (item, anns) in original.items():
        new_item, new_annotations = imported[filename]
        assert new_item["id"] != item["id"]
        assert platform.store.item_blob(new_item["id"])[0] == platform.store.item_blob(item["id"])[0]
        assert new_item["metadata"] == item["metadata"]
        assert [shape(a) for a in new_annotations] == [shape(a) for a in anns]
        assert {a["id"] for a in new_annotations}.isdisjoint(a["id"] for a in anns)
        assert all(a["itemId"] == new_item["id"] and a["datasetId"] == copy.id for a in new_annotations)


def test_dataloop_export_round_trip_digits(platform, tmp_path):
    source = import_digits(platform).dataset
    assert platform.export(source, None, None, tmp_path / "export") == 1797
    result = import_dataloop_export(platform, tmp_path / "export", "digits-copy")
    assert (result.added, result.skipped) == (1797, 0)
    assert_same_dataset(platform, source, result.dataset)
    assert result.dataset.items.list().items_count == 1797
    assert import_dataloop_export(platform, tmp_path / "export", "digits-copy").added == 0


def test_dataloop_export_round_trip_coco(platform, coco, tmp_path):
    path, images, _data, mask = coco
    source = import_coco(platform, path, images, "coco").dataset
    platform.export(source, None, None, tmp_path / "export")
    copy = import_dataloop_export(platform, tmp_path / "export").dataset
    assert copy.name == "export"
    assert_same_dataset(platform, source, copy)
    (annotation,) = copy.items.get(filepath="/sub/two.jpg").annotations.list()
    np.testing.assert_array_equal(annotation.annotation_definition.geo, mask)


def test_dataloop_export_item_without_json(platform, tmp_path, caplog):
    write_image(tmp_path / "export" / "items" / "a" / "x.png", (5, 4), 1)
    with caplog.at_level(logging.WARNING, logger="runner.data"):
        result = import_dataloop_export(platform, tmp_path / "export", "bare")
    item, annotations = stored(platform, result.dataset)["/a/x.png"]
    assert annotations == [] and (item["metadata"]["system"]["width"], item["dir"]) == (5, "/a")
    # an export without JSON (LocalPlatform.export(with_json=False)): the missing folder, said once
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'export'} has no json/ folder: its 1 item file(s) are imported without annotations"]


def test_dataloop_export_items_without_their_json_are_named_in_a_warning(platform, tmp_path, caplog):
    """Imported without annotations, as before, but no longer without a word: the count and the first few."""
    export = tmp_path / "export"
    write_image(export / "items" / "ok.png", value=1)
    for i in range(7):
        write_image(export / "items" / "sub" / f"bare{i}.png", value=10 + i)
    (export / "items" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: skipped, not named
    (export / "json").mkdir()
    (export / "json" / "ok.json").write_text(json.dumps(
        {"filename": "/ok.png", "annotations": [{"type": "class", "label": "cat"}]}))
    with caplog.at_level(logging.WARNING, logger="runner.data"):
        result = import_dataloop_export(platform, export, "copy")
    items = stored(platform, result.dataset)
    assert len(items) == 8 and items["/sub/bare6.png"][1] == [] and len(items["/ok.png"][1]) == 1
    [message] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert message == (f"7 item file(s) in {export / 'items'} have no JSON in {export / 'json'} and are imported "
                       "without annotations: sub/bare0.png, sub/bare1.png, sub/bare2.png, sub/bare3.png, "
                       "sub/bare4.png (and 2 more)")

    caplog.clear()
    for i in range(7):
        (export / "json" / "sub").mkdir(exist_ok=True)
        (export / "json" / "sub" / f"bare{i}.json").write_text(json.dumps(
            {"filename": f"/sub/bare{i}.png", "annotations": []}))
    with caplog.at_level(logging.WARNING, logger="runner.data"):
        assert import_dataloop_export(platform, export, "complete").added == 8
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_dataloop_export_without_items_folder_is_reported_once(platform, tmp_path):
    export = tmp_path / "export"
    (export / "json").mkdir(parents=True)
    for name in ("a", "b"):
        (export / "json" / f"{name}.json").write_text(json.dumps({"filename": f"/{name}.png", "annotations": []}))
    with pytest.raises(DataImportError, match=r"has json/ but no items/") as err:
        import_dataloop_export(platform, export, "copy")
    assert err.value.where == str(export / "items")
    assert platform.find_dataset("copy") is None


def test_dataloop_export_annotations_with_only_type_and_label_list_again(platform, tmp_path):
    export = tmp_path / "export"
    write_image(export / "items" / "x.png", value=1)
    (export / "json").mkdir(parents=True)
    (export / "json" / "x.json").write_text(json.dumps(
        {"filename": "/x.png", "annotations": [{"type": "class", "label": "cat"}]}))
    dataset = import_dataloop_export(platform, export, "minimal").dataset
    [item] = dataset.items.list().items
    assert [(a.type, a.label) for a in item.annotations.list()] == [("class", "cat")]


@pytest.mark.parametrize("problem", ["no item file", "not item json", "not json", "annotation without type",
                                     "annotation without label"])
def test_dataloop_export_bad_folder_stores_nothing(platform, tmp_path, problem):
    export = tmp_path / "export"
    write_image(export / "items" / "ok.png", value=1)
    (export / "json").mkdir(parents=True)
    (export / "json" / "ok.json").write_text(json.dumps({"filename": "/ok.png", "annotations": []}))
    bad = export / "json" / "bad.json"
    if problem == "no item file":
        bad.write_text(json.dumps({"filename": "/bad.png", "annotations": []}))
    elif problem == "not item json":
        bad.write_text(json.dumps({"images": [], "annotations": []}))
    elif problem == "not json":
        bad.write_text("[1, 2")
    else:
        write_image(export / "items" / "bad.png", value=2)
        annotation = {"label": "cat"} if problem == "annotation without type" else {"type": "class"}
        bad.write_text(json.dumps({"filename": "/bad.png", "annotations": [annotation]}))
    with pytest.raises(DataImportError, match="bad.json"):
        import_dataloop_export(platform, export, "copy")
    assert platform.find_dataset("copy") is None


def test_dataloop_export_skips_hidden_files_unless_a_json_names_them(platform, tmp_path):
    export = tmp_path / "export"
    write_image(export / "items" / "test" / "a.png", value=1)
    (export / "items" / "test" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    write_image(export / "items" / "test" / "._a.png", value=2)  # macOS AppleDouble twin
    (export / "items" / ".git" / "objects").mkdir(parents=True)
    (export / "items" / ".git" / "objects" / "ab12").write_bytes(b"blob")
    write_image(export / "items" / ".cache" / "b.png", value=3)
    write_image(export / "items" / ".kept.png", value=4)  # hidden, but its JSON asks for it
    (export / "json").mkdir()
    (export / "json" / ".kept.json").write_text(json.dumps(
        {"filename": "/.kept.png", "annotations": [{"type": "class", "label": "cat"}]}))
    result = import_dataloop_export(platform, export, "copy")
    items = stored(platform, result.dataset)
    assert sorted(items) == ["/.kept.png", "/test/a.png"]
    assert [(a["type"], a["label"]) for a in items["/.kept.png"][1]] == [("class", "cat")]
    assert import_dataloop_export(platform, export, "copy").added == 0


GEOMETRY_WITHOUT_USABLE_COORDINATES = {
    "box": {"type": "box", "label": "cat"},
    "polygon": {"type": "segment", "label": "cat"},  # dl.Polygon's type (dl.AnnotationType.POLYGON)
    "polyline": {"type": "polyline", "label": "cat"},
    "point": {"type": "point", "label": "cat"},
    "binary": {"type": "binary", "label": "cat"},
    "ellipse": {"type": "ellipse", "label": "cat"},
    "box with null coordinates": {"type": "box", "label": "cat", "coordinates": None},
    "box with one point": {"type": "box", "label": "cat", "coordinates": [{"x": 1, "y": 2}]},
    "box with 'data' only": {"type": "box", "label": "cat", "data": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]},
    "point without y": {"type": "point", "label": "cat", "coordinates": {"x": 1}},
    "binary not a png": {"type": "binary", "label": "cat", "coordinates": "not a mask"},
}


@pytest.mark.parametrize("problem", sorted(GEOMETRY_WITHOUT_USABLE_COORDINATES))
def test_dataloop_export_geometry_without_coordinates_stores_nothing(platform, tmp_path, problem):
    """dtlpy cannot read these back (Box.from_json: KeyError; a binary fails when its mask is read), so
    they are refused before anything is stored, naming the file and the annotation."""
    export = tmp_path / "export"
    write_image(export / "items" / "ok.png", value=1)
    (export / "json").mkdir(parents=True)
    (export / "json" / "ok.json").write_text(json.dumps({"filename": "/ok.png", "annotations": [
        {"type": "box", "label": "cat", "coordinates": [{"x": 1, "y": 2}, {"x": 5, "y": 6}]}]}))
    import_dataloop_export(platform, export, "copy")
    dataset = platform.get_dataset(name="copy")
    before = (item_count(platform, "copy"), platform.store.count_annotations(dataset.id))
    assert before == (1, 1)

    write_image(export / "items" / "bad.png", value=2)
    annotation = GEOMETRY_WITHOUT_USABLE_COORDINATES[problem]
    (export / "json" / "bad.json").write_text(json.dumps({"filename": "/bad.png", "annotations": [
        {"type": "class", "label": "cat"}, annotation]}))
    with pytest.raises(DataImportError, match=r"bad\.json(.|\n)*annotations\[1\] has no usable coordinates") as err:
        import_dataloop_export(platform, export, "copy")
    assert f"its type {annotation['type']!r}" in str(err.value)
    assert (item_count(platform, "copy"), platform.store.count_annotations(dataset.id)) == before


def test_dataloop_export_geometry_with_coordinates_lists_back(platform, tmp_path, caplog):
    export = tmp_path / "export"
    write_image(export / "items" / "x.png", (20, 20), 1)
    (export / "json").mkdir(parents=True)
    (export / "json" / "x.json").write_text(json.dumps({"filename": "/x.png", "annotations": [
        {"type": "box", "label": "cat", "coordinates": [{"x": 1, "y": 2}, {"x": 5.5, "y": 6}]},
        {"type": "point", "label": "dog", "coordinates": {"x": 3, "y": 4}},
        {"type": "segment", "label": "cat", "coordinates": [[{"x": 1, "y": 1}, {"x": 8, "y": 1}, {"x": 8, "y": 9}]]}]}))
    dataset = import_dataloop_export(platform, export, "copy").dataset
    [item] = dataset.items.list().items
    with caplog.at_level(logging.WARNING):
        by_type = {a.type: a for a in item.annotations.list()}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # dtlpy read every one
    assert sorted(by_type) == ["box", "point", "segment"]
    box, point, polygon = by_type["box"], by_type["point"], by_type["segment"]
    assert (box.type, box.label, box.left, box.top, box.right, box.bottom) == ("box", "cat", 1, 2, 5.5, 6)
    assert (point.type, point.x, point.y) == ("point", 3, 4)
    assert polygon.type == "segment" and polygon.annotation_definition.geo.tolist() == [[1, 1], [8, 1], [8, 9]]


def test_store_records_refuses_an_annotation_without_coordinates(platform, tmp_path):
    """The record check every importer goes through, with the same rule as the export's JSON check."""
    path = write_image(tmp_path / "x.png", value=1)
    record = ImportRecord(filename="/x.png", mimetype="image/png", width=12, height=9, source=path,
                          annotations=[{"type": "point", "label": "cat", "coordinates": {"y": 1}}])
    with pytest.raises(DataImportError, match=r"an annotation of /x\.png has no usable coordinates.*'point'") as err:
        store_records(platform, "records", ["cat"], [record])
    assert err.value.where == str(path)
    assert platform.find_dataset("records") is None


def test_a_second_import_with_other_bytes_under_the_same_names_is_refused(platform, tmp_path):
    first = import_shapes(platform, n_images=12, seed=0)
    before = platform.count_items(first.dataset, None)
    with pytest.raises(DataImportError, match="already holds have other bytes") as raised:
        import_shapes(platform, n_images=12, seed=1)
    assert "delete-dataset shapes" in str(raised.value)
    assert platform.count_items(first.dataset, None) == before
    assert import_shapes(platform, n_images=12, seed=0).added == 0  # the same import again: nothing to add

    write_image(tmp_path / "photos" / "cat" / "a.png", value=1)
    import_image_folder(platform, tmp_path / "photos", "photos")
    write_image(tmp_path / "photos" / "cat" / "a.png", value=9)  # edited since
    with pytest.raises(DataImportError, match="/cat/a.png"):
        import_image_folder(platform, tmp_path / "photos", "photos")


def test_a_dataloop_export_folder_that_is_not_there_says_so(platform, tmp_path):
    with pytest.raises(DataImportError, match="no folder .*nope"):
        import_dataloop_export(platform, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataImportError, match="is not a Dataloop export: it has neither items/ nor json/"):
        import_dataloop_export(platform, tmp_path / "empty")


def test_an_empty_dataloop_export_creates_no_dataset(platform, tmp_path):
    export = tmp_path / "export"
    (export / "items").mkdir(parents=True)
    (export / "json").mkdir()
    (export / "items" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: not an item
    with pytest.raises(DataImportError, match="no items found in .*export") as err:
        import_dataloop_export(platform, export, "copy")
    assert err.value.where == str(export)
    assert platform.find_dataset("copy") is None


@pytest.mark.parametrize("importer", ["import_image_folder", "import_unlabeled_images", "import_dataloop_export"])
def test_a_file_given_for_a_folder_says_it_is_a_file(platform, coco, importer, monkeypatch):
    """Not 'no folder coco/instances.json', which is there: a file. A JSON file may be a COCO file,
    so the fix names the COCO importer's keys; an image file gets no such hint."""
    import runner.data

    path, images, _data, _mask = coco
    run = getattr(runner.data, importer)
    with pytest.raises(DataImportError, match=r"^.*instances\.json is a file, not a folder") as err:
        run(platform, path, "x")
    assert err.value.fix.startswith("pass as folder (dataset.folder) the folder ")
    assert f"dataset=coco dataset.annotation_file={path} dataset.images_dir=" in err.value.fix
    with pytest.raises(DataImportError, match=r"one\.png is a file, not a folder") as err:
        run(platform, images / "one.png", "x")
    assert "coco" not in err.value.fix
    with pytest.raises(DataImportError, match=r"^no folder .*nope"):
        run(platform, images / "nope", "x")
    # a relative folder is named as given, and where as the path it was looked for at
    monkeypatch.chdir(images)
    with pytest.raises(DataImportError, match=r"^no folder pets\n") as err:
        run(platform, "pets", "x")
    assert err.value.where == str(images / "pets")
    assert platform.find_dataset("x") is None


def test_unlabeled_images_keep_their_paths_and_carry_no_annotation(platform, tmp_path):
    from runner.data import import_unlabeled_images

    folder = tmp_path / "new"
    (folder / "batch2").mkdir(parents=True)
    (folder / ".cache").mkdir()
    for i, name in enumerate(["a.png", "batch2/b.png"]):
        Image.fromarray((DIGITS.images[i] * 16).astype(np.uint8)).save(folder / name)
    (folder / ".cache" / "c.png").write_bytes(b"not read: hidden")
    (folder / "notes.txt").write_text("not an image")
    result = import_unlabeled_images(platform, folder, "new")
    items = sorted(i.filename for page in platform.iter_items(result.dataset, None) for i in page if i.type == "file")
    assert items == ["/a.png", "/batch2/b.png"]
    assert platform.store.count_annotations(result.dataset.id) == 0 and not result.dataset.labels
    assert import_unlabeled_images(platform, folder, "new").added == 0  # a second import adds nothing
    (folder / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataImportError, match="bad.png"):
        import_unlabeled_images(platform, folder, "new")


def test_a_coco_bbox_reaching_past_its_image_is_imported_as_given_with_one_warning(platform, coco, caplog):
    import logging

    path, images, data, _mask = coco
    data["annotations"] += [{"id": 4, "image_id": 100, "category_id": 1, "bbox": [35, 3, 10, 5]},  # past x = 40
                            {"id": 5, "image_id": 200, "category_id": 1, "bbox": [0, 0, 20.4, 16]}]  # rounding
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="runner"):
        result = import_coco(platform, path, images, "coco")
    warnings = [r.getMessage() for r in caplog.records if "reach past their image" in r.getMessage()]
    assert warnings == [f"1 bbox(es) of {path} reach past their image (imported as given; they score as such): "
                        "annotations[3] bbox [35, 3, 10, 5] on 40x30"], warnings
    assert result.added == 3


def test_class_folders_one_case_apart_and_labels_without_train_items_are_warned(platform, tmp_path, caplog):
    folder = tmp_path / "shapes"
    for split, label in (("train", "circle"), ("train", "square"), ("test", "Circle"), ("test", "square")):
        write_image(folder / split / label / "a.png", value=3)
    with caplog.at_level(logging.WARNING, logger="runner"):
        import_image_folder(platform, folder)
    assert f"{folder}: the class folders Circle, circle differ only in case, so they are 2 labels" in caplog.text
    assert f"{folder}: label(s) Circle have no folder under train/" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="runner"):
        import_image_folder(platform, tmp_path / "shapes" / "train", dataset_name="plain")  # no splits: no such note
    assert "differ only in case" not in caplog.text and "no folder under train/" not in caplog.text
