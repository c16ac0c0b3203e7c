"""Text items: a folder of ``.txt`` files imported as text items (``text/plain``), the shipped TF-IDF
adapter trained, evaluated and predicting on new text from the command line, and a model of images
refused on text before anything is stored."""

from __future__ import annotations

import csv
import json
import random
import sys

import pytest

from runner.data import (
    import_dataloop_export,
    import_image_folder,
    import_text_folder,
    import_unlabeled_texts,
)
from runner.errors import DataImportError
from tests.test_cli import dlrun, ok, output_dirs, read_json

WORDS = {"sports": "ball goal team match score player coach league win".split(),
         "food": "pasta bread cheese soup salad taste cook recipe dinner".split(),
         "tech": "computer code software chip network data cloud server app".split()}
FILLER = "the a is was very and of to in with".split()


def sentence(rng: random.Random, label: str) -> str:
    return " ".join(rng.choice(WORDS[label] if rng.random() < 0.4 else FILLER) for _ in range(12))


def write_texts(folder, per_split=(("train", 20), ("validation", 5), ("test", 8)), seed: int = 0) -> None:
    """``<folder>/<split>/<label>/<label>_<i>.txt``: sentences of each class's words among filler words."""
    rng = random.Random(seed)
    for split, n in per_split:
        for label in WORDS:
            (folder / split / label).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                (folder / split / label / f"{label}_{i}.txt").write_text(sentence(rng, label), encoding="utf-8")


def test_a_folder_of_text_files_imports_as_text_items(platform, tmp_path, caplog):
    write_texts(tmp_path / "texts", per_split=(("train", 2), ("test", 1)))
    (tmp_path / "texts" / "train" / "food" / "notes.md").write_text("not a text item")
    result = import_text_folder(platform, tmp_path / "texts", "texts")
    assert result.added == 9 and "skipping" in caplog.text and "notes.md: not a text file (extensions: .txt)" in caplog.text
    items = {item.filename: item for item in result.dataset.items.list().all()}
    item = items["/train/food/food_0.txt"]
    assert item.metadata["system"]["mimetype"] == "text/plain" and item.metadata["system"]["tags"] == {"train": True}
    assert item.download(save_locally=False).read().decode() == (tmp_path / "texts/train/food/food_0.txt").read_text()
    assert [a.label for a in item.annotations.list()] == ["food"]
    assert sorted(label.tag for label in result.dataset.labels) == sorted(WORDS)
    assert import_text_folder(platform, tmp_path / "texts", "texts").added == 0  # a second import adds nothing

    (tmp_path / "new" / "more").mkdir(parents=True)
    (tmp_path / "new" / "a.txt").write_text("ball goal")
    (tmp_path / "new" / "more" / "b.txt").write_text("pasta soup")
    new = import_unlabeled_texts(platform, tmp_path / "new", "new")
    assert sorted(i.filename for i in new.dataset.items.list().all()) == ["/a.txt", "/more/b.txt"]
    assert new.dataset.labels == []


def test_a_text_file_that_is_not_utf8_stores_nothing_and_an_image_importer_names_the_text_one(platform, tmp_path):
    write_texts(tmp_path / "texts", per_split=(("train", 2),))
    (tmp_path / "texts" / "train" / "tech" / "bad.txt").write_bytes(b"caf\xe9 latin-1")
    with pytest.raises(DataImportError, match="bad.txt as UTF-8") as err:
        import_text_folder(platform, tmp_path / "texts", "texts")
    assert "save it as UTF-8" in err.value.fix and platform.find_dataset("texts") is None
    (tmp_path / "texts" / "train" / "tech" / "bad.txt").unlink()
    with pytest.raises(DataImportError, match="no images found") as err:
        import_image_folder(platform, tmp_path / "texts", "texts")
    assert err.value.fix.endswith("; it holds text files: dataset=text_folder imports those")


def test_train_evaluate_and_predict_new_text_from_the_command_line(tmp_path):
    write_texts(tmp_path / "texts")
    text = ["adapter=tfidf_text", "dataset=text_folder", "dataset.folder=texts", "dataset.name=texts"]
    trained = ok(dlrun(tmp_path, *text))
    [out] = output_dirs(trained.stdout)
    assert read_json(out / "metrics.json")["accuracy"] >= 0.8  # a real classifier of real words
    version = read_json(out / "model.json")["name"]

    rng = random.Random(7)
    (tmp_path / "new").mkdir()
    truth = {}
    for i, label in enumerate(sorted(WORDS) * 2):
        (tmp_path / "new" / f"t{i}.txt").write_text(sentence(rng, label))
        truth[f"/t{i}.txt"] = label
    new = ["pipeline=predict", f"model.name={version}", "dataset=unlabeled_texts", "dataset.folder=new",
           "dataset.name=new", "pipeline.predict_subset=null"]
    predicted = ok(dlrun(tmp_path, *new))
    assert "adapter=tfidf_text: the adapter that trained the version" in predicted.stderr
    assert "predicted 6 items" in predicted.stdout + predicted.stderr
    ok(dlrun(tmp_path, "export", "new", "new.csv", "--model", version, command=[sys.executable, "-m", "runner.store"]))
    rows = list(csv.DictReader((tmp_path / "new.csv").open()))
    assert {r["filename"] for r in rows} == set(truth) and all(r["model"] == version for r in rows)
    assert sum(r["label"] == truth[r["filename"]] for r in rows) >= 4


def test_a_model_of_images_on_text_items_is_refused_before_anything_is_stored(tmp_path):
    write_texts(tmp_path / "texts", per_split=(("train", 3), ("validation", 1), ("test", 1)))
    refused = dlrun(tmp_path, "dataset=text_folder", "dataset.folder=texts", "dataset.name=texts")  # adapter=sklearn
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert ("error: the model reads image items (model.input_type 'image'), but the items of dataset 'texts' are "
            "text/plain (e.g. /train/") in refused.stderr
    assert "fix: choose an adapter made for those items (adapter=tfidf_text reads text" in refused.stderr
    listed = json.loads(ok(dlrun(tmp_path, "models", "--json", command=[sys.executable, "-m", "runner.store"])).stdout)
    assert listed == []  # no base model, no version


def test_annotations_of_another_type_than_the_models_are_named(tmp_path):
    """A Dataloop export whose items carry a misspelt annotation type: the training refuses, naming
    the type the items have."""
    (tmp_path / "export" / "items" / "train").mkdir(parents=True)
    (tmp_path / "export" / "json" / "train").mkdir(parents=True)
    for split in ("train", "validation", "test"):
        for i, label in enumerate(WORDS):
            (tmp_path / "export" / "items" / split).mkdir(parents=True, exist_ok=True)
            (tmp_path / "export" / "json" / split).mkdir(parents=True, exist_ok=True)
            (tmp_path / "export" / "items" / split / f"{i}.txt").write_text(label)
            (tmp_path / "export" / "json" / split / f"{i}.json").write_text(json.dumps(
                {"filename": f"/{split}/{i}.txt", "annotations": [{"type": "classification", "label": label}]}))
    refused = dlrun(tmp_path, "adapter=tfidf_text", "dataset=dataloop_export", "dataset.folder=export",
                    "dataset.name=typed")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "no item of subset 'train' has an annotation of model" in refused.stderr
    assert "(its items have annotations of type 'classification')" in refused.stderr


def test_the_text_importers_give_a_dataloop_export_back(platform, tmp_path):
    """Text items export as Dataloop writes them, and that export imports again as the same items."""
    from runner.store import main

    write_texts(tmp_path / "texts", per_split=(("train", 2),))
    import_text_folder(platform, tmp_path / "texts", "texts")
    assert main(["--root", str(platform.root), "export", "texts", str(tmp_path / "out")]) == 0
    copy = import_dataloop_export(platform, tmp_path / "out", "copy").dataset
    assert {i.filename: i.metadata["system"]["mimetype"] for i in copy.items.list().all()} == \
        {f"/train/{label}/{label}_{i}.txt": "text/plain" for label in WORDS for i in range(2)}
