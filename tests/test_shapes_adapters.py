"""The generated shapes dataset and the shapes detector / segmenter on real generated images: the importer's
determinism and annotations, training and the runner's evaluate, artifacts that reload to the same
predictions, and both experiments through ``runner.app.run``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import dtlpy as dl
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image
from scipy import ndimage

from adapters.shapes_detector import META_FILE, MODEL_FILE, ShapesDetector
from adapters.shapes_segmenter import ShapesSegmenter, component_polygon, trace_contour
from runner import app
from runner.data.shapes import LABELS, import_shapes
from runner.errors import DataImportError
from runner.metrics.rasterize import annotation_mask, polygon_mask
from runner.platform.local import LocalPlatform

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
SUBSETS = ("train", "validation", "test")
N_IMAGES = 150  # training and evaluating on these takes seconds
# what the adapters reach on the test subset of N_IMAGES (seed 0), less a margin
AP50_FLOOR = 0.8
MEAN_IOU_FLOOR = 0.95


def stored(platform: LocalPlatform, dataset_name: str = "shapes") -> dict[str, tuple[dict, list[dict]]]:
    """filename -> (item JSON, its annotation JSON), straight from the store."""
    dataset = platform.get_dataset(name=dataset_name)
    items = [j for page in platform.store.iter_items(dataset.id, None) for j in page]
    annotations = platform.store.annotations_of([j["id"] for j in items])
    return {j["filename"]: (j, annotations[j["id"]]) for j in items}


def image_bytes(platform: LocalPlatform, item: dict) -> bytes:
    return platform.get_dataset(name="shapes").items.get(item_id=item["id"]).download(save_locally=False).getvalue()


def content(annotation: dict) -> tuple:
    return (annotation["type"], annotation["label"], json.dumps(annotation["coordinates"], sort_keys=True),
            json.dumps(annotation["metadata"].get("user"), sort_keys=True))


def by_dir(subset: str) -> dict:
    return dl.Filters(field="dir", values=f"/{subset}").prepare()


def new_model(platform: LocalPlatform, dataset, name: str, output_type: str, **configuration) -> dl.Model:
    return platform.create_model(name, dataset, configuration={"batch_size": 16, **configuration},
                                 subsets={s: by_dir(s) for s in SUBSETS}, input_type="image",
                                 output_type=output_type)


def test_trace_contour_gives_back_the_mask():
    rng = np.random.default_rng(0)
    for trial in range(200):
        noise = rng.random((24, 24)) < 0.55
        blobs, count = ndimage.label(ndimage.binary_opening(noise) if trial % 2 else noise, structure=np.ones((3, 3)))
        if count == 0:
            continue
        biggest = 1 + int(np.argmax(ndimage.sum(noise, blobs, range(1, count + 1))))
        mask = ndimage.binary_fill_holes(blobs == biggest)
        polygon = trace_contour(mask)
        assert polygon.shape[1] == 2 and len(polygon) >= 3
        np.testing.assert_array_equal(polygon_mask(polygon, *mask.shape), mask)


# -- the importer --------------------------------------------------------------------------------


def test_same_seed_same_dataset_and_a_second_import_adds_nothing(tmp_path):
    first, second, other = (LocalPlatform(tmp_path / name) for name in ("a", "b", "c"))
    result = import_shapes(first, n_images=40, seed=3)
    assert (result.added, result.skipped) == (40, 0)
    import_shapes(second, n_images=40, seed=3)
    import_shapes(other, n_images=40, seed=4)

    a, b, c = stored(first), stored(second), stored(other)
    assert sorted(a) == sorted(b)
    for filename, (item, anns) in a.items():
        twin, twin_annotations = b[filename]
        assert image_bytes(first, item) == image_bytes(second, twin)
        assert [content(x) for x in anns] == [content(x) for x in twin_annotations]
    # another seed: other images, another split
    assert sorted(a) != sorted(c)
    by_name = {item["name"]: item for item, _annotations in c.values()}
    assert all(image_bytes(first, item) != image_bytes(other, by_name[item["name"]]) for item, _a in a.values())

    # split by dir and tagged the same, 70/15/15
    sizes = {}
    for filename, (item, _annotations) in a.items():
        subset = item["dir"].lstrip("/")
        assert filename == f"/{subset}/{item['name']}" and subset in SUBSETS
        assert item["metadata"]["system"]["tags"] == {subset: True}
        sizes[subset] = sizes.get(subset, 0) + 1
    assert sizes == {"train": 28, "validation": 6, "test": 6}

    again = import_shapes(first, n_images=40, seed=3)
    assert (again.added, again.skipped) == (0, 40)
    dataset = first.get_dataset(name="shapes")
    assert first.store.count_items(dataset.id, None) == 40
    assert first.store.count_annotations(dataset.id) == sum(len(anns) for _item, anns in a.values())
    assert [label.tag for label in dataset.labels] == LABELS


def test_every_shape_has_a_box_a_polygon_and_a_mask_that_agree(platform):
    import_shapes(platform, n_images=40, size=64, seed=0)
    items = stored(platform)
    seen_labels, shapes_per_image = set(), []
    for filename, (item, anns) in items.items():
        system = item["metadata"]["system"]
        assert (system["width"], system["height"], system["mimetype"]) == (64, 64, "image/png")
        pixels = np.asarray(Image.open(io.BytesIO(image_bytes(platform, item))))
        assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
        groups: dict[int, list[dict]] = {}
        for annotation in anns:
            assert "model" not in annotation["metadata"]["system"]
            groups.setdefault(annotation["metadata"]["user"]["shape"]["index"], []).append(annotation)
        assert 1 <= len(groups) <= 4, filename
        shapes_per_image.append(len(groups))
        union = np.zeros((64, 64), bool)
        for index, group in groups.items():
            kinds = {a["type"]: a for a in group}
            assert sorted(kinds) == ["binary", "box", "segment"] and len(group) == 3, (filename, index)
            labels = {a["label"] for a in group}
            assert len(labels) == 1 and labels <= set(LABELS)
            seen_labels |= labels
            polygon_pixels = annotation_mask(kinds["segment"], 64, 64)
            mask = annotation_mask(kinds["binary"], 64, 64)
            np.testing.assert_array_equal(polygon_pixels, mask)  # the mask is the polygon, rasterized
            assert mask.sum() >= 40  # not too small
            rows, cols = np.nonzero(mask)
            (x1, y1), (x2, y2) = ((p["x"], p["y"]) for p in kinds["box"]["coordinates"])
            assert (x1, y1, x2, y2) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            if labels == {"circle"}:
                assert len(kinds["segment"]["coordinates"][0]) == 24
            assert not (union & mask).any()  # shapes do not overlap
            union |= mask
            # the shape is painted in its colour, the noise averages out
            colour = np.asarray(group[0]["metadata"]["user"]["shape"]["colour"], dtype=float)
            assert np.abs(pixels[mask].mean(axis=0) - colour).max() < 8
    assert seen_labels == set(LABELS)
    assert len(set(shapes_per_image)) > 1


def test_bad_arguments_store_nothing(platform):
    with pytest.raises(DataImportError, match="split"):
        import_shapes(platform, split=(0.5, 0.2, 0.2))
    with pytest.raises(DataImportError, match="n_images"):
        import_shapes(platform, n_images=0)
    with pytest.raises(DataImportError, match="size"):
        import_shapes(platform, size=16)
    assert platform.find_dataset("shapes") is None


# -- the adapters --------------------------------------------------------------------------------


def test_detector_trains_evaluates_and_reloads_to_the_same_predictions(platform):
    dataset = import_shapes(platform, n_images=N_IMAGES).dataset
    model = new_model(platform, dataset, "shapes-detector", "box")
    adapter = ShapesDetector()
    adapter.train_model(model)
    assert model.status == "trained"
    assert sorted(a.local_path for a in model.artifacts.list()) == sorted([MODEL_FILE, META_FILE])

    metrics = adapter.evaluate_model(model, dataset, filters=by_dir("test"))
    assert metrics["AP50"] >= AP50_FLOOR
    assert metrics["n_predictions"] >= metrics["n_truth"] * 0.9
    assert not metrics["problems"]

    images = [adapter.prepare_item_func(item) for page in dataset.items.list(filters=dl.Filters(
        field="dir", values="/test")) for item in page]
    fresh = ShapesDetector()
    fresh.load_from_model(model_entity=platform.get_model(model_id=model.id))
    before, after = adapter.predict(images), fresh.predict(images)
    assert sum(len(c) for c in before) > 0

    def rows(collections):
        return [[(a.type, a.label, a.coordinates, a.metadata["user"]["model"]["confidence"]) for a in c]
                for c in collections]

    assert rows(before) == rows(after)
    assert all(a.type == "box" and a.label in LABELS for c in after for a in c)

    fresh.configuration["threshold"] = -1  # every pixel foreground: refused, not one whole-image box
    with pytest.raises(ValueError, match="threshold=-1 is out of range"):
        fresh.predict(images[:1])


def test_segmenter_polygons_and_masks(platform):
    dataset = import_shapes(platform, n_images=N_IMAGES).dataset
    results = {}
    for output_type in ("segment", "binary"):
        model = new_model(platform, dataset, f"shapes-{output_type}", output_type)
        adapter = ShapesSegmenter()
        adapter.train_model(model)
        results[output_type] = adapter.evaluate_model(model, dataset, filters=by_dir("test"))
        types = {a["type"] for rows in platform.store.annotations_of(
            [j["id"] for page in platform.store.iter_items(dataset.id, by_dir("test")) for j in page]).values()
            for a in rows if (a["metadata"]["system"].get("model") or {}).get("name") == model.name}
        assert types == {output_type}
    for metrics in results.values():
        assert metrics["mean_iou"] >= MEAN_IOU_FLOOR
        assert metrics["instance_precision"] >= 0.95
        assert metrics["instance_mean_match_iou"] >= MEAN_IOU_FLOOR


def test_hull_polygons_cover_the_component(platform):
    dataset = import_shapes(platform, n_images=20).dataset
    item = next(iter(dataset.items.list(filters=by_dir("train")).items))
    adapter = ShapesSegmenter()
    image = np.asarray(Image.open(item.download(save_locally=False)))
    for component in adapter.components(image):
        exact = polygon_mask(component_polygon(component, "contour"), 64, 64)
        hull = polygon_mask(component_polygon(component, "hull"), 64, 64)
        full = component.full_mask(64, 64)
        np.testing.assert_array_equal(exact, full)
        assert (hull >= full).all() and (hull & full).sum() / (hull | full).sum() > 0.85
    with pytest.raises(ValueError, match="polygon"):
        component_polygon(component, "star")


# -- through the runner --------------------------------------------------------------------------


def compose_config(*overrides: str):
    app.register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_both_experiments_run_through_the_runner(tmp_path, dataloop_home):
    small = f"dataset.source.n_images={N_IMAGES}"
    out = tmp_path / "detection"
    ap = app.run(compose_config("experiment=shapes_detection", small), out)
    assert ap is not None and ap > 0.5
    assert (out / "pr_curves.png").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["AP"] == pytest.approx(ap) and metrics["AP50"] >= AP50_FLOOR
    model = json.loads((out / "model.json").read_text())
    assert model["status"] == "trained" and sorted(model["artifacts"]) == sorted([MODEL_FILE, META_FILE])
    assert sum(json.loads((out / "data.json").read_text())["items_per_subset"].values()) == N_IMAGES

    out = tmp_path / "segmentation"
    mean_iou = app.run(compose_config("experiment=shapes_segmentation", small), out)
    assert mean_iou is not None and mean_iou >= MEAN_IOU_FLOOR
    assert json.loads((out / "metrics.json").read_text())["mean_iou"] == pytest.approx(mean_iou)
    assert (out / "confusion_matrix.png").is_file()
    # both runs used the one generated dataset, in the platform under DATALOOP_PATH
    platform = LocalPlatform(dataloop_home / "local")
    assert platform.store.count_items(platform.get_dataset(name="shapes").id, None) == N_IMAGES
