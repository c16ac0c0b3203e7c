"""dtlpy entities served by the local store: the methods adapters call work offline; others say so."""

from __future__ import annotations

import io
import json
from pathlib import Path

import dtlpy as dl
import numpy as np
import pytest
from PIL import Image

from runner.errors import AlreadyExistsError, NotFoundError, RunnerError, UnsupportedOperation
from runner.platform.local import LocalPlatform
from runner.platform.local.store import new_id, now_iso


@pytest.fixture
def dataset(platform):
    dataset = platform.create_dataset("shapes", labels=["cat", "dog"])
    rows = []
    for i in range(12):
        buffer = io.BytesIO()
        Image.fromarray(np.full((6, 4, 3), i * 20, np.uint8)).save(buffer, "PNG")
        rows.append({"dataset_id": dataset.id, "filename": f"/{'a' if i < 7 else 'b'}/{i:02d}.png",
                     "dir": f"/{'a' if i < 7 else 'b'}", "name": f"{i:02d}.png", "mimetype": "image/png",
                     "blob": platform.blobs.put_bytes(buffer.getvalue()),
                     "metadata": {"system": {"mimetype": "image/png", "width": 4, "height": 6}}})
    rows.append({"dataset_id": dataset.id, "filename": "/notes/readme.txt", "dir": "/notes", "name": "readme.txt",
                 "mimetype": "text/plain", "blob": platform.blobs.put_bytes(b"hello\nworld"),
                 "metadata": {"system": {"mimetype": "text/plain"}}})
    platform.store.insert_items(rows)
    return dataset


def test_entities_are_real_dtlpy_entities(platform, dataset):
    model = platform.create_model("m", dataset, subsets={})
    item = next(iter(dataset.items.list().all()))
    for entity, cls in ((dataset, dl.Dataset), (item, dl.Item), (model, dl.Model), (platform.project, dl.Project)):
        assert isinstance(entity, cls)
    assert model.dataset.id == dataset.id and item.dataset.id == dataset.id


def test_items_list_pages_and_counts(dataset):
    filters = dl.Filters(field="dir", values="/a")
    filters.page_size = 3
    pages = dataset.items.list(filters=filters)
    assert pages.items_count == 7 and len(pages.items) == 3
    names = [item.name for page in pages for item in page]
    assert sorted(names) == [f"{i:02d}.png" for i in range(7)] and len(set(names)) == 7
    everything = dataset.items.list()
    assert everything.items_count == 13
    later = dataset.items.list(filters=dl.Filters(field="dir", values="/a"), page_offset=1, page_size=3)
    assert later.items_count == 7 and [i.name for i in later.items] == ["03.png", "04.png", "05.png"]
    one = pages.items[0]
    assert dataset.items.list(filters=dl.Filters(field="id", values=one.id)).items_count == 1
    assert dataset.items.get(filepath="/b/08.png").name == "08.png"
    # as a fetched Dataloop dataset carries it
    assert platform_dataset_count(dataset) == 13


def platform_dataset_count(dataset) -> int:
    return dataset.project.datasets.get(dataset_id=dataset.id).items_count


def test_a_record_not_found_is_dtlpys_not_found_as_adapters_catch_it(platform, dataset):
    """``except dl.exceptions.NotFound`` is the adapters' idiom (e.g. look for an item, upload it if
    absent): the local platform's lookups raise that, a 404 that is also the runner's NotFoundError."""
    lookups = {"item by id": lambda: dataset.items.get(item_id="0" * 24),
               "item by path": lambda: dataset.items.get(filepath="/a/nope.png"),
               "dataset": lambda: platform.project.datasets.get(dataset_name="nope"),
               "model": lambda: platform.project.models.get(model_name="nope")}
    for what, lookup in lookups.items():
        with pytest.raises(dl.exceptions.NotFound) as caught:
            lookup()
        assert isinstance(caught.value, NotFoundError), what
        assert caught.value.status_code == "404", what
        assert "nope" in caught.value.message or "0" * 24 in caught.value.message, what


def test_item_download_forms(dataset, tmp_path):
    item = dataset.items.get(filepath="/a/03.png")
    buffer = item.download(save_locally=False)
    assert isinstance(buffer, io.BytesIO) and buffer.name == "03.png"
    array = item.download(to_array=True)
    assert array.shape == (6, 4, 3) and int(array[0, 0, 0]) == 60
    path = item.download(local_path=str(tmp_path))
    assert path == str(tmp_path / "03.png") and Image.open(path).size == (4, 6)
    text = dataset.items.get(filepath="/notes/readme.txt")
    assert text.download(save_locally=False).read() == b"hello\nworld"


def test_item_annotations_upload_list_delete(dataset):
    item = dataset.items.get(filepath="/a/01.png")
    collection = dl.AnnotationCollection()
    collection.add(annotation_definition=dl.Box(left=0, top=1, right=3, bottom=5, label="cat"))
    collection.add(annotation_definition=dl.Classification(label="dog"),
                   model_info={"name": "m", "confidence": 0.7})
    uploaded = item.annotations.upload(collection)
    assert len(uploaded) == 2 and all(a.id for a in uploaded)
    listed = item.annotations.list()
    assert [(a.type, a.label) for a in listed] == [("box", "cat"), ("class", "dog")]
    assert listed[0].coordinates == [{"x": 0.0, "y": 1.0, "z": 0}, {"x": 3.0, "y": 5.0, "z": 0}]
    only_boxes = item.annotations.list(filters=dl.Filters(resource=dl.FiltersResource.ANNOTATION, field="type",
                                                          values="box"))
    assert [a.type for a in only_boxes] == ["box"]
    listed[0].delete()
    assert [a.type for a in item.annotations.list()] == ["class"]
    assert item.annotations.get(listed[1].id).label == "dog"
    item.annotations.delete(filters=dl.Filters(resource=dl.FiltersResource.ANNOTATION))
    assert len(item.annotations.list()) == 0


def test_dataset_annotations_list_pages_over_the_datasets_annotations_as_dataloop_does(dataset):
    """The usual way to read a model's predictions back: a dataset-wide annotation query, in pages."""
    items = [dataset.items.get(filepath=f"/a/{i:02d}.png") for i in range(5)]
    for n, item in enumerate(items):
        collection = dl.AnnotationCollection()
        collection.add(annotation_definition=dl.Box(left=0, top=1, right=3, bottom=5, label="cat"))  # ground truth
        collection.add(annotation_definition=dl.Box(left=n, top=1, right=n + 2, bottom=5, label="dog"),
                       model_info={"name": "m", "confidence": 0.5 + n / 10})
        # stamped as the runner's predict stamps them (Dataloop does it for a model's uploads)
        collection.annotations[-1].metadata.setdefault("system", {})["model"] = {"name": "m", "model_id": "x",
                                                                                 "confidence": 0.5 + n / 10}
        item.annotations.upload(collection)
    predictions = dl.Filters(resource=dl.FiltersResource.ANNOTATION, field="metadata.system.model.name", values="m")
    pages = dataset.annotations.list(filters=predictions, page_size=2)
    assert isinstance(pages, dl.entities.PagedEntities)
    assert (pages.items_count, pages.total_pages_count) == (5, 3)
    listed = [annotation for page in pages for annotation in page]
    # dtlpy asks for them by id, paging on the last id seen, as Dataloop serves them
    assert [a.id for a in listed] == sorted(a.id for a in listed)
    assert sorted((a.item_id, a.label, a.left) for a in listed) == sorted((item.id, "dog", n)
                                                                          for n, item in enumerate(items))
    assert all(a.dataset_id == dataset.id for a in listed)
    everything = dataset.annotations.list()
    assert everything.items_count == 10 and {a.type for a in everything.all()} == {"box"}
    with pytest.raises(UnsupportedOperation, match="dataset.annotations.list with an items filter"):
        dataset.annotations.list(filters=dl.Filters(field="dir", values="/a"))


def test_an_annotation_uploaded_as_a_plain_dict_lists_again(dataset):
    item = dataset.items.get(filepath="/a/02.png")
    item.annotations.upload({"type": "class", "label": "circle", "coordinates": None, "metadata": {}})
    item.annotations.upload({"type": "class", "label": "square"})
    assert sorted(a.label for a in item.annotations.list()) == ["circle", "square"]
    with pytest.raises(ValueError, match="has no label"):
        item.annotations.upload({"type": "class"})
    assert len(item.annotations.list()) == 2


def test_model_configuration_labels_and_update_persist(platform, dataset):
    model = platform.create_model("m", dataset, configuration={"batch_size": 2}, subsets={})
    assert model.labels == ["cat", "dog"]
    assert model.id_to_label_map == {0: "cat", 1: "dog"} and model.label_to_id_map == {"cat": 0, "dog": 1}
    model.configuration["lr"] = 0.1
    model.status = "trained"
    model.update()
    again = platform.get_model(model.id)
    assert again.configuration["lr"] == 0.1 and again.status == "trained"
    assert again.id_to_label_map == {0: "cat", 1: "dog"}


def test_taking_a_name_another_record_has_is_refused_by_name(platform, dataset):
    platform.create_model("first", dataset, subsets={})
    second = platform.create_model("second", dataset, subsets={})
    second.name = "first"
    with pytest.raises(AlreadyExistsError, match="a model named 'first' already exists in this project"):
        second.update()
    assert platform.get_model(second.id).name == "second"  # nothing changed
    platform.project.feature_sets.create(name="vectors", size=4, set_type="x", entity_type=dl.FeatureEntityType.ITEM)
    with pytest.raises(AlreadyExistsError, match="a feature set named 'vectors' already exists"):
        platform.project.feature_sets.create(name="vectors", size=8, set_type="x",
                                             entity_type=dl.FeatureEntityType.ITEM)


def test_model_metrics_and_artifacts(platform, dataset, tmp_path):
    model = platform.create_model("m", dataset, subsets={})
    model.metrics.create(samples=[dl.PlotSample(figure="loss", legend="train", x=i, y=1.0 / (i + 1))
                                  for i in range(3)], dataset_id=dataset.id)
    assert [(s.figure, s.x) for s in model.metrics.list()] == [("loss", 0), ("loss", 1), ("loss", 2)]
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "weights.bin").write_bytes(b"\x00\x01")
    (tmp_path / "w" / "sub").mkdir()
    (tmp_path / "w" / "sub" / "cfg.json").write_text("{}")
    model.artifacts.upload(filepath=str(tmp_path / "w" / "*"))
    assert sorted(a.local_path for a in model.artifacts.list()) == ["sub/cfg.json", "weights.bin"]
    # as Dataloop's ItemArtifact entries: name and filename, which adapters read
    assert sorted((a.name, a.filename) for a in model.artifacts.list()) == [("cfg.json", "/sub/cfg.json"),
                                                                            ("weights.bin", "/weights.bin")]
    assert sorted(a.local_path for a in platform.get_model(model.id).model_artifacts) == ["sub/cfg.json",
                                                                                          "weights.bin"]
    out = model.artifacts.download(local_path=str(tmp_path / "out"))
    assert (tmp_path / "out" / "weights.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "out" / "sub" / "cfg.json").exists() and out == str(tmp_path / "out")


def test_an_artifact_whose_file_left_the_store_is_named(platform, dataset, tmp_path):
    model = platform.create_model("m", dataset, subsets={})
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "weights.bin").write_bytes(b"\x00\x02")
    model.artifacts.upload(filepath=str(tmp_path / "w" / "*"))
    [(_name, sha, _size)] = platform.store.list_artifacts(model.id)
    blob = Path(platform.blobs.path(sha))
    blob.unlink()
    with pytest.raises(RunnerError, match="artifact 'weights.bin' of model 'm' is recorded but its file is gone") as err:
        model.artifacts.download(local_path=str(tmp_path / "out"))
    assert err.value.where == str(blob)
    assert "delete-model 'm'" in err.value.fix


def test_clone_makes_a_new_version_with_overrides_and_shared_artifacts(platform, dataset, tmp_path):
    model = platform.create_model("base", dataset, configuration={"lr": 0.1, "epochs": 3}, subsets={})
    (tmp_path / "w.bin").write_bytes(b"w")
    platform.add_artifacts(model, {"w.bin": tmp_path / "w.bin"}, replace=True)
    clone = model.models.clone(from_model=model, model_name="base-v2", configuration={"lr": 0.01})
    assert clone.id != model.id and clone.name == "base-v2"
    assert clone.configuration == {"lr": 0.01, "epochs": 3}
    assert [a.local_path for a in clone.artifacts.list()] == ["w.bin"]
    assert platform.store.get_model(clone.id)["clonedFrom"] == model.id
    assert platform.get_model(model.id).configuration["lr"] == 0.1


def test_project_models_list_pages_as_dataloops_listing_does(platform, dataset):
    made = [platform.create_model(name, dataset, subsets={}).id for name in ("a", "b", "c")]
    listing = platform.project.models.list()
    assert listing.items_count == 3 and [m.id for m in listing.all()] == made
    assert [[m.name for m in page] for page in listing] == [["a", "b", "c"]]  # iterating gives pages
    assert isinstance(listing.items[0], dl.Model)
    model = platform.get_model(made[0])
    assert model.models.wait_for_model_ready(model) is model  # a local clone is ready at once


def test_unsupported_methods_name_themselves_and_never_reach_the_network(platform, dataset):
    item = dataset.items.get(filepath="/a/01.png")
    model = platform.create_model("m", dataset, subsets={})
    cases = [(lambda: dataset.recipes.create(), "dl.Recipes.create"),
             (lambda: item.tasks.list(), "dl.Tasks.list"),
             (lambda: model.services.list(), "dl.Services.list"),
             (lambda: dataset.items.clone(item_id=item.id), "dl.Items.clone"),
             (lambda: platform.client.gen_request(req_type="get", path="/projects"), "GET /projects")]
    for call, name in cases:
        with pytest.raises(UnsupportedOperation) as err:
            call()
        assert name in str(err.value)


def test_the_ontology_recipe_and_annotation_builder_adapters_reach_for(platform, dataset):
    """As on Dataloop: a dataset has a recipe holding its ontology, a model made from it takes that
    ontology, and ``item.annotations.builder()`` starts an item's collection."""
    model = platform.create_model("m", dataset, subsets={})
    item = dataset.items.get(filepath="/a/01.png")
    [ontology_id] = dataset.ontology_ids
    [recipe] = dataset.recipes.list()
    assert isinstance(recipe, dl.Recipe) and recipe.ontology_ids == [ontology_id]
    assert dataset.recipes.get(recipe_id=recipe.id).id == recipe.id
    [ontology] = recipe.ontologies.list()
    assert [label.tag for label in ontology.labels] == ["cat", "dog"]
    assert dataset.ontologies.get(ontology_id=ontology_id).id == ontology.id == dataset.ontologies.list()[0].id
    assert model.ontology_id == ontology_id and [label.tag for label in model.ontology.labels] == ["cat", "dog"]
    with pytest.raises(NotFoundError, match="ontology 'nope' not found"):
        dataset.ontologies.get(ontology_id="nope")
    with pytest.raises(NotFoundError, match=f"its recipe is '{recipe.id}'"):
        dataset.recipes.get(recipe_id="nope")

    builder = item.annotations.builder()
    assert isinstance(builder, dl.AnnotationCollection) and builder.item.id == item.id
    builder.add(annotation_definition=dl.Classification(label="dog"))
    item.annotations.upload(builder)
    assert [a.label for a in item.annotations.list()] == ["dog"]


def test_dataset_download_annotations_writes_the_items_json_as_dataloop_does(platform, dataset, tmp_path):
    item = dataset.items.get(filepath="/a/01.png")
    collection = item.annotations.builder()
    collection.add(annotation_definition=dl.Box(top=1, left=1, bottom=3, right=2, label="cat"))
    item.annotations.upload(collection)
    out = dataset.download_annotations(local_path=str(tmp_path / "dl"), filters=dl.Filters(field="dir", values="/a"))
    assert out == str(tmp_path / "dl") and sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["json"]
    written = sorted(p.relative_to(tmp_path / "dl" / "json").as_posix() for p in (tmp_path / "dl").rglob("*.json"))
    assert written == [f"a/{i:02d}.json" for i in range(7)]
    saved = json.loads((tmp_path / "dl" / "json" / "a" / "01.json").read_text())
    assert saved["filename"] == "/a/01.png" and [a["label"] for a in saved["annotations"]] == ["cat"]
    with pytest.raises(UnsupportedOperation, match="downloading annotations as"):
        dataset.download_annotations(local_path=str(tmp_path / "m"), annotation_options=dl.ViewAnnotationOptions.MASK)


def test_module_level_dtlpy_calls_name_themselves_not_a_login(platform, dataset, monkeypatch):
    """``dl.items.get(...)`` and the like go through dtlpy's global client; without a login they say
    what they are and what to use instead (not "Token expired, please login"), and send nothing."""
    monkeypatch.setattr(dl.client_api, "token_expired", lambda *a, **k: True)  # as on a machine never logged in
    item = dataset.items.get(filepath="/a/01.png")
    for call, name, path in ((lambda: dl.items.get(item_id=item.id), "dl.items.get", f"GET /items/{item.id}"),
                             (lambda: dl.models.get(model_id="abc"), "dl.models.get", "GET /ml/models/abc"),
                             (lambda: dl.datasets.list(), "dl.datasets.list", "/datasets")):
        with pytest.raises(UnsupportedOperation) as err:
            call()
        message = str(err.value)
        assert message.startswith(f"{name} asks Dataloop's servers (") and path in message, message
        assert "item.dataset.items.get(item_id=...)" in message and "platform=dataloop" in message


def test_missing_records_give_clear_errors(platform):
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        platform.get_dataset(name="nope")
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        platform.get_model(name="nope")


def test_a_missing_model_suggests_the_closest_names_not_all_of_them(platform, dataset):
    for i in range(20):
        platform.create_model(f"cnn-v{i:02d}", dataset)
    platform.create_model("svc-digits", dataset)
    with pytest.raises(NotFoundError) as raised:
        platform.get_model(name="svc-digit")
    fix = str(raised.value).split("fix: ", 1)[1]
    assert fix.startswith("use one of: svc-digits, ")
    assert fix.endswith("(and 13 more) (python -m runner.store models lists them), or create it first")
    assert fix.count("cnn-v") == 7


def test_a_platform_root_that_cannot_hold_a_store_is_one_clear_error(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    not_sqlite = tmp_path / "not-sqlite"
    not_sqlite.mkdir()
    (not_sqlite / "platform.db").write_text("not a database")
    for root, cause in ((a_file, "FileExistsError"), (not_sqlite, "file is not a database")):
        with pytest.raises(RunnerError) as raised:
            LocalPlatform(root)
        message = str(raised.value)
        assert f"the local platform at {root} cannot be opened" in message and cause in message
        assert "where: platform.root" in message
    assert (not_sqlite / "platform.db").read_text() == "not a database"  # left as it was


def test_store_survives_reopening(tmp_path):
    first = LocalPlatform(tmp_path / "p")
    dataset = first.create_dataset("d", labels=["x"])
    first.store.insert_items([{"id": new_id(), "dataset_id": dataset.id, "filename": "/f.txt", "dir": "/",
                               "name": "f.txt", "created_at": now_iso()}])
    second = LocalPlatform(tmp_path / "p")
    assert second.get_dataset(name="d").labels[0].tag == "x"
    assert second.count_items(second.get_dataset(name="d"), None) == 1
