"""The runner's annotation JSON is dtlpy's ``Annotation.to_json()``, key order included; what it refuses
to store is what dtlpy cannot read back."""

from __future__ import annotations

import json

import dtlpy as dl
import numpy as np
import pytest

from runner.platform.annotation_json import annotation_to_json, completed, missing_key

MASK = np.zeros((6, 8), bool)
MASK[1:4, 2:6] = True

DEFINITIONS = {
    "class": lambda: dl.Classification(label="cat"),
    "box": lambda: dl.Box(left=1.5, top=2, right=10, bottom=12.25, label="dog", attributes={"pose": "side"}),
    "polygon": lambda: dl.Polygon(geo=[[1, 1], [5, 1], [5, 4]], label="cat"),
    "polyline": lambda: dl.Polyline(geo=[[0, 0], [3, 3]], label="dog"),
    "point": lambda: dl.Point(x=3, y=4, label="cat"),
    "ellipse": lambda: dl.Ellipse(x=4, y=4, rx=2, ry=1, angle=30, label="dog"),
    "segment": lambda: dl.Segmentation(geo=MASK, label="cat"),
    "text": lambda: dl.Text(text_type="block", start=0, end=5, label="cat"),
    "description": lambda: dl.Description(text="a cat on a mat"),
}


@pytest.fixture
def item(platform):
    dataset = platform.create_dataset("json", labels=["cat", "dog"])
    platform.store.insert_items([{"dataset_id": dataset.id, "filename": "/a.png", "dir": "/", "name": "a.png",
                                  "mimetype": "image/png", "blob": platform.blobs.put_bytes(b"x"),
                                  "metadata": {"system": {"mimetype": "image/png", "width": 8, "height": 6}}}])
    return next(iter(dataset.items.list().all()))


def same_as_dtlpy(annotation) -> dict:
    ours, theirs = annotation_to_json(annotation), annotation.to_json()
    assert json.dumps(ours) == json.dumps(theirs)  # equal, and in the same key order
    return ours


@pytest.mark.parametrize("kind", sorted(DEFINITIONS))
def test_every_definition_matches_dtlpy(kind, item):
    collection = dl.AnnotationCollection(item=item)
    collection.add(annotation_definition=DEFINITIONS[kind](), model_info={"name": "m", "confidence": 0.75})
    annotation = collection.annotations[0]
    annotation.metadata.setdefault("system", {})["model"] = {"model_id": "abc", "name": "m", "confidence": 0.75}
    data = same_as_dtlpy(annotation)
    assert data["type"] == annotation.type and data["itemId"] == item.id
    assert missing_key(data) is None  # what dtlpy builds passes the check before storing


def test_optional_fields_and_metadata_copies_match_dtlpy(item):
    annotation = dl.Annotation.new(item=item, annotation_definition=dl.Box(left=0, top=0, right=2, bottom=2,
                                                                           label="cat", description="boxed"),
                                   object_id="7", automated=False,
                                   metadata={"user": {"tags": ("a", "b"), "nested": {"k": [1, (2, 3)]}}})
    annotation.status = dl.AnnotationStatus.CLEAR
    annotation.label_suggestions = {"cat": 0.9}
    data = same_as_dtlpy(annotation)
    assert data["metadata"]["system"]["status"] is None and data["metadata"]["system"]["objectId"] == "7"
    # a copy, as dtlpy's: editing the JSON leaves the annotation as it was
    data["metadata"]["user"]["nested"]["k"].append(4)
    assert annotation.metadata["user"]["nested"]["k"] == [1, (2, 3)]
    annotation.status = "approved"
    assert same_as_dtlpy(annotation)["metadata"]["system"]["status"] == "approved"


def test_video_annotations_take_dtlpy_path(item):
    annotation = dl.Annotation.new(item=item, annotation_definition=dl.Box(left=0, top=0, right=2, bottom=2,
                                                                           label="cat"), frame_num=0, end_time=2.0)
    annotation.add_frame(annotation_definition=dl.Box(left=1, top=1, right=3, bottom=3, label="cat"), frame_num=5)
    data = same_as_dtlpy(annotation)
    assert data["metadata"]["system"]["snapshots_"] and "frame" in data["metadata"]["system"]


# every type whose coordinates dtlpy's from_json reads (FrameAnnotation.json_to_annotation_definition)
NEEDS_COORDINATES = ["box", "segment", "polyline", "point", "binary", "ellipse", "cube", "cube_3d", "note", "pose",
                     "gis", "subtitle"]
# types dtlpy reads without coordinates: classification, free text, and types it keeps as undefined
NEEDS_NONE = ["class", "text", "comparison", "text_mark", "item_description", "ref_image", "polygon"]


def read_back(data: dict):
    """What listing the annotation does with it: dtlpy's definition, the mask decoded for a binary."""
    definition = dl.entities.annotation.FrameAnnotation.json_to_annotation_definition(
        {"type": data["type"], "label": data["label"], "coordinates": data.get("coordinates", []), "attributes": None})
    if data["type"] == "binary":
        definition.geo  # noqa: B018 - Segmentation decodes its PNG lazily
    return definition


@pytest.mark.parametrize("kind", NEEDS_COORDINATES)
def test_types_with_coordinates_need_them_as_dtlpy_does(kind):
    for coordinates in (None, [], {}, "x"):
        data = {"type": kind, "label": "cat", "coordinates": coordinates}
        assert missing_key(data) == "coordinates", coordinates
        with pytest.raises(Exception):  # noqa: B017 - dtlpy fails with KeyError, TypeError, IndexError...
            read_back(data)
    with pytest.raises(ValueError, match=f"annotation a1 has no usable coordinates for its type '{kind}'"):
        completed({"id": "a1", "type": kind, "label": "cat"})


@pytest.mark.parametrize("kind", NEEDS_NONE)
def test_types_without_coordinates_are_stored_without_them(kind):
    data = completed({"type": kind, "label": "cat"})
    assert missing_key(data) is None and data["coordinates"] is None
    read_back(data)


@pytest.mark.parametrize(("kind", "coordinates"), [
    ("box", [{"x": 1, "y": 2}]),  # one corner
    ("box", [{"x": "1", "y": 2}, {"x": 3, "y": 4}]),  # numpy cannot take min of strings
    ("box", [{"x": 1, "y": None}, {"x": 3, "y": 4}]),
    ("segment", [[{"x": 1, "y": 1}, {"x": 2}]]),
    ("segment", [{"x": 1, "y": 1}, {"x": 2, "y": 2}]),  # the ring not inside a list of rings
    ("point", {"x": 1}),
    ("binary", "iVBORw0KGgo"),  # base64 without its data URL prefix
    ("binary", {"data": None}),
    ("ellipse", {"center": {"x": 1, "y": 1}, "rx": 2, "ry": 1}),  # no angle
])
def test_malformed_coordinates_are_refused(kind, coordinates):
    assert missing_key({"type": kind, "label": "cat", "coordinates": coordinates}) == "coordinates"


def test_upload_of_a_dict_without_coordinates_stores_nothing(item):
    """The local platform's item.annotations.upload goes through the same check as the importers."""
    with pytest.raises(ValueError, match=r"no usable coordinates for its type 'box'.*item " + item.id):
        item.annotations.upload([{"type": "class", "label": "cat"}, {"type": "box", "label": "cat"}])
    assert item.annotations.list().annotations == []
    item.annotations.upload({"type": "box", "label": "cat", "coordinates": [{"x": 1, "y": 2}, {"x": 4, "y": 5}]})
    [box] = item.annotations.list()
    assert (box.type, box.left, box.top, box.right, box.bottom) == ("box", 1, 2, 4, 5)


def test_a_label_that_is_not_a_string_says_so():
    with pytest.raises(ValueError, match=r"has a label that is not a string \(7; e.g. label='7'\)"):
        completed({"type": "class", "label": 7})
    with pytest.raises(ValueError, match="has no label"):
        completed({"type": "class", "label": ""})
