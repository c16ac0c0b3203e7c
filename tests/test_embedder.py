"""The PCA embedder (``adapters/pca_embedder.py``): trained on the digits, its vectors stored in the
model's feature set for every item, nearest-neighbour queries over them, a save/load round trip, and
the two runs ``pipeline=train`` then ``pipeline=embed model.name=<version>`` through ``runner.app.run``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dtlpy as dl
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from adapters.pca_embedder import PcaEmbedder, image_features
from runner import BaseModelAdapter, app
from runner.data import import_digits
from runner.errors import NotFoundError, PredictionError
from runner.platform.local import LocalPlatform
from tests.digits_subsets import SUBSETS
from tests.run_folders import trained_in

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
DIGITS_ITEMS = 1797
# measured: 0.969 of the 5 nearest neighbours (cosine, 16 components) of a digit show the same digit
SAME_LABEL_FLOOR = 0.9


def compose_config(*overrides: str):
    app.register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def labels_by_item(platform: LocalPlatform, dataset: dl.Dataset) -> dict[str, str]:
    out = {}
    for page in platform.iter_items(dataset, None):
        annotations = platform.annotations_of(page, {"filter": {"type": "class"}, "resource": "annotations"})
        for item in page:
            out[item.id] = annotations[item.id][0]["label"]
    return out


def nearest(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the k most similar rows to each row (cosine: the vectors are unit length), and the
    similarity of each row to itself minus its best similarity (0 when a row is its own neighbour)."""
    similarity = matrix @ matrix.T
    order = np.argsort(-similarity, axis=1, kind="stable")
    self_gap = np.diag(similarity) - similarity.max(axis=1)
    return order[:, :k], self_gap


def assert_neighbours_share_labels(ids: list[str], matrix: np.ndarray, labels: dict[str, str]) -> float:
    y = np.asarray([labels[i] for i in ids])
    top, self_gap = nearest(matrix, 6)
    # each item's own vector is its nearest neighbour (ties only with identical images)
    assert np.all(self_gap > -1e-5)
    assert (top[:, 0] == np.arange(len(ids))).mean() > 0.99
    neighbours = np.where(top[:, :1] == np.arange(len(ids))[:, None], top[:, 1:], top[:, :5])
    share = float((y[neighbours] == y[:, None]).mean())
    assert share >= SAME_LABEL_FLOOR, share
    return share


def new_model(platform, dataset, name="pca", **configuration):
    return platform.create_model(name, dataset, configuration={"batch_size": 64, **configuration},
                                 input_type="image", output_type="embedding", subsets=SUBSETS)


def test_train_embed_dataset_vectors_neighbours_and_round_trip(platform, digits, tmp_path):
    model = new_model(platform, digits, n_components=16)
    adapter = PcaEmbedder()
    adapter.train_model(model)

    stored = platform.get_model(model.id)
    assert stored.status == "trained"
    assert sorted(a.local_path for a in stored.artifacts.list()) == ["pca.json", "pca.npz"]
    assert stored.configuration["embeddings_size"] == 16  # set by train, persisted

    assert adapter.embed_dataset(digits) == DIGITS_ITEMS
    ids, matrix = stored.feature_set.features.vectors()
    assert len(ids) == len(set(ids)) == DIGITS_ITEMS
    assert set(ids) == {item.id for page in platform.iter_items(digits, None) for item in page}
    assert matrix.shape == (DIGITS_ITEMS, 16) and matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert_neighbours_share_labels(ids, matrix, labels_by_item(platform, digits))

    # save → load: the artifacts give the same vectors, bit for bit, on the same batch
    reloaded = PcaEmbedder()
    reloaded.load_from_model(model_entity=platform.get_model(model.id), local_path=tmp_path / "reloaded")
    for key in ("components", "mean", "explained_variance"):
        np.testing.assert_array_equal(reloaded.model[key], adapter.model[key])
    items = next(platform.iter_items(digits, SUBSETS["test"], page_size=50))
    batch = [reloaded.prepare_item_func(item) for item in items]
    again = np.stack(reloaded.embed(batch))
    np.testing.assert_array_equal(again, np.stack(adapter.embed(batch)))
    stored_rows = dict(zip(ids, matrix, strict=True))
    np.testing.assert_allclose(again, np.stack([stored_rows[item.id] for item in items]), atol=1e-6)
    with np.load(tmp_path / "reloaded" / "pca.npz", allow_pickle=False) as arrays:
        assert arrays["components"].shape == (16, 64)
    assert json.loads((tmp_path / "reloaded" / "pca.json").read_text())["n_components"] == 16


def test_two_worker_processes_store_the_vectors_one_process_computes(platform, digits, caplog):
    model = new_model(platform, digits, n_components=8)
    adapter = PcaEmbedder()
    adapter.train_model(model)
    with caplog.at_level("INFO", logger="runner.sharding"):
        assert adapter.embed_dataset(digits, workers=2) == DIGITS_ITEMS  # this process and one spawned worker
    assert f"embedding {DIGITS_ITEMS} items" in caplog.text and "on this process and 1 worker process(es)" in caplog.text
    ids, matrix = platform.get_model(model.id).feature_set.features.vectors()
    assert len(ids) == len(set(ids)) == DIGITS_ITEMS
    items, vectors = adapter.embed_items([i for page in platform.iter_items(digits, None) for i in page],
                                         upload_features=False)
    expected = dict(zip([item.id for item in items], vectors, strict=True))
    np.testing.assert_allclose(matrix, np.stack([expected[i] for i in ids]), atol=1e-6)
    assert len(platform.store.find_feature_sets(platform.project.id, model_id=model.id)) == 1


def test_vectors_equal_scikit_learn_pca_transform(platform, digits, tmp_path):
    from sklearn.decomposition import PCA

    model = new_model(platform, digits, n_components=10, whiten=True, normalize=False)
    adapter = PcaEmbedder()
    adapter.train_model(model)

    data = tmp_path / "data"
    adapter.prepare_data(digits, root_path=tmp_path, data_path=data)
    train = PcaEmbedder._train_features(data / "train", 8, True)
    reference = PCA(n_components=10, whiten=True, svd_solver="full").fit(train)
    items, vectors = adapter.embed_items(list(next(platform.iter_items(digits, SUBSETS["test"], page_size=40))),
                                         upload_features=False)
    features = np.stack([image_features(adapter.prepare_item_func(item), 8, True) for item in items])
    expected = np.abs(reference.transform(features))  # a component's sign is arbitrary
    np.testing.assert_allclose(np.abs(np.stack(vectors)), expected, rtol=1e-3, atol=1e-3)


def test_bad_n_components_and_embedding_before_training_are_clear_errors(platform, digits):
    model = new_model(platform, digits, n_components=65)  # 8x8 images: at most 64
    with pytest.raises(ValueError, match="n_components is 65"):
        PcaEmbedder().train_model(model)
    assert platform.get_model(model.id).status == "failed"

    untrained = PcaEmbedder()
    untrained.load_from_model(model_entity=new_model(platform, digits, name="untrained"))
    with pytest.raises(ValueError, match="train pipeline first"):
        untrained.embed([np.zeros((8, 8, 1), np.uint8)])


def test_train_then_embed_pipelines(tmp_path, dataloop_home):
    objective = app.run(compose_config("adapter=pca_embedder", "pipeline=train",
                                       "adapter.configuration.n_components=12"), tmp_path / "train")
    assert objective is None
    version = json.loads((tmp_path / "train" / "model.json").read_text())
    assert version["status"] == "trained" and version["output_type"] == "embedding"
    assert version["artifacts"] == ["pca.json", "pca.npz"]
    assert version["configuration"]["n_components"] == version["configuration"]["embeddings_size"] == 12

    app.run(compose_config("adapter=pca_embedder", "pipeline=embed", f"model.name={version['name']}"),
            tmp_path / "embed")
    assert json.loads((tmp_path / "embed" / "model.json").read_text())["id"] == version["id"]
    assert json.loads((tmp_path / "embed" / "run.json").read_text())["items"] == {"embedded": DIGITS_ITEMS}

    platform = LocalPlatform(dataloop_home / "local")
    dataset = platform.get_dataset(name="digits")
    model = platform.get_model(name=version["name"])
    ids, matrix = model.feature_set.features.vectors()
    assert len(set(ids)) == platform.count_items(dataset, None) == DIGITS_ITEMS
    assert matrix.shape == (DIGITS_ITEMS, 12)
    # a nearest-neighbour query from Python: the items most like one test digit
    labels = labels_by_item(platform, dataset)
    query = ids.index(next(platform.iter_items(dataset, SUBSETS["test"]))[0].id)
    top = np.argsort(-(matrix @ matrix[query]))[:6]
    assert matrix[top[0]] @ matrix[query] == pytest.approx(1.0, abs=1e-5)  # itself (or an identical image)
    assert sum(labels[ids[i]] == labels[ids[query]] for i in top[1:]) >= 3
    assert_neighbours_share_labels(ids, matrix, labels)


def test_vectors_of_the_wrong_size_fail_their_batch_with_one_message(platform, digits):
    class Ragged(BaseModelAdapter):
        def load(self, local_path, **kwargs):
            pass

        def embed(self, batch, **kwargs):  # the batch's second item gets a shorter vector
            return [np.zeros(8 if i != 1 else 5, np.float32) for i in range(len(batch))]

    model = platform.create_model("ragged", digits, output_type="embedding", configuration={"embeddings_size": 8,
                                                                                            "batch_size": 4})
    adapter = Ragged()
    adapter.platform = platform
    adapter.model_entity = model
    items = list(next(platform.iter_items(digits, SUBSETS["test"], page_size=8)))
    with pytest.raises(PredictionError) as err:
        adapter.embed_items(items)
    causes = set(err.value.failed.values())
    assert len(err.value.failed) == 8 and len(causes) == 2  # one message per batch
    assert f"1 of the batch's 4 feature vectors have 5 values (item {items[1].id}), the feature set holds vectors " \
           "of 8" in " ".join(causes)


class PixelMeans(BaseModelAdapter):
    """Vectors of a fixed length from an image's pixels: ``width`` values, each the image's mean times
    its position (the ``nan_at`` item of a batch gets NaN)."""

    width, nan_at = 16, None

    def load(self, local_path, **kwargs):
        pass

    def embed(self, batch, **kwargs):
        vectors = [float(np.asarray(image).mean()) * np.arange(1, self.width + 1, dtype=np.float32) for image in batch]
        if self.nan_at is not None:
            vectors[self.nan_at][0] = np.nan
        return vectors


def bound(adapter: BaseModelAdapter, platform, model) -> BaseModelAdapter:
    adapter.platform = platform
    adapter.model_entity = model
    return adapter


def test_a_first_embed_refused_for_its_size_leaves_the_feature_set_free_to_take_the_right_one(platform, digits):
    model = platform.create_model("means", digits, output_type="embedding",
                                  configuration={"embeddings_size": 8, "batch_size": 4})
    items = list(next(platform.iter_items(digits, SUBSETS["test"], page_size=8)))
    with pytest.raises(PredictionError, match="have 16 values"):
        bound(PixelMeans(), platform, model).embed_items(items)
    model.configuration.pop("embeddings_size")  # the setting corrected: the vectors' own length
    model.update()
    bound(PixelMeans(), platform, platform.get_model(model.id)).embed_items(items)
    ids, matrix = platform.get_model(model.id).feature_set.features.vectors()
    assert matrix.shape == (8, 16) and set(ids) == {item.id for item in items}
    # a set that holds vectors keeps their length: another is refused
    with pytest.raises(PredictionError, match="have 4 values.*the feature set holds vectors of 16"):
        bound(type("Short", (PixelMeans,), {"width": 4})(), platform, platform.get_model(model.id)).embed_items(items)
    assert platform.get_model(model.id).feature_set.size == 16


def test_vectors_with_nan_are_refused_with_their_batch_and_named_at_embed(platform, digits):
    model = platform.create_model("nan", digits, output_type="embedding", configuration={"batch_size": 4})
    items = list(next(platform.iter_items(digits, SUBSETS["test"], page_size=8)))
    with pytest.raises(PredictionError) as err:
        bound(type("Nan", (PixelMeans,), {"nan_at": 1})(), platform, model).embed_items(items)
    assert len(err.value.failed) == 8
    assert f"1 of the batch's 4 feature vectors hold NaN or infinite values (item {items[1].id})" in \
        err.value.failed[items[1].id]
    text = str(err.value)
    assert re.search(r"raised at \S+test_embedder.py:\d+ in PixelMeans.embed \(what it returned\)", text), text
    ids, _matrix = platform.get_model(model.id).feature_set.features.vectors()
    assert ids == []  # no batch of them is stored


def test_vectors_come_in_the_order_asked_for_or_of_one_dataset_in_the_items_order(platform, digits):
    other = import_digits(platform, dataset_name="digits-copy").dataset
    model = platform.create_model("means", digits, output_type="embedding", configuration={"batch_size": 8})
    adapter = bound(PixelMeans(), platform, model)
    ours = list(next(platform.iter_items(digits, SUBSETS["test"], page_size=6)))
    theirs = list(next(platform.iter_items(other, SUBSETS["test"], page_size=4)))
    adapter.embed_items(ours + theirs)
    features = platform.get_model(model.id).feature_set.features

    asked = [ours[3].id, theirs[0].id, ours[0].id]
    ids, matrix = features.vectors(item_ids=asked)
    assert ids == asked
    np.testing.assert_allclose(matrix[:, 0], [float(np.asarray(adapter.prepare_item_func(i)).mean())
                                              for i in (ours[3], theirs[0], ours[0])], rtol=1e-6)
    with pytest.raises(NotFoundError, match=r"1 of the 2 items asked for have no vector .*: nope"):
        features.vectors(item_ids=[ours[0].id, "nope"])
    assert features.vectors(dataset=digits)[0] == [item.id for item in ours]  # as the dataset lists its items
    assert features.vectors(dataset="digits-copy")[0] == [item.id for item in theirs]
    assert len(features.vectors()[0]) == 10


def test_sharded_embedding_without_an_embeddings_size_makes_the_set_as_long_as_the_vectors(platform, digits):
    model = platform.create_model("means", digits, output_type="embedding", configuration={"batch_size": 64})
    adapter = bound(PixelMeans(), platform, model)
    assert adapter.embed_dataset(digits, SUBSETS["test"], workers=2) == platform.count_items(digits, SUBSETS["test"])
    assert platform.get_model(model.id).feature_set.size == PixelMeans.width  # not dtlpy's default of 256
    assert len(platform.store.find_feature_sets(platform.project.id, model_id=model.id)) == 1


def test_the_vectors_command_writes_them_to_npz_or_csv_and_refuses_what_it_cannot_write(platform, digits, capsys,
                                                                                          tmp_path):
    from runner.store import main

    def store(*args: str) -> tuple[int, str]:
        code = main(["--root", str(platform.root), "vectors", *args])
        out, err = capsys.readouterr()
        return code, out + err

    other = import_digits(platform, dataset_name="digits-copy").dataset
    model = platform.create_model("means", digits, output_type="embedding", configuration={"batch_size": 8})
    adapter = bound(PixelMeans(), platform, model)
    ours = list(next(platform.iter_items(digits, SUBSETS["test"], page_size=5)))
    theirs = list(next(platform.iter_items(other, SUBSETS["test"], page_size=3)))
    _, vectors = adapter.embed_items(ours + theirs)

    code, said = store("means", str(tmp_path / "all.npz"))
    assert code == 0 and "wrote 8 vectors of 16 values (model version means, every dataset it embedded)" in said
    with np.load(tmp_path / "all.npz", allow_pickle=False) as arrays:
        assert list(arrays["item_ids"]) == [item.id for item in ours + theirs]
        assert list(arrays["datasets"]) == ["digits"] * 5 + ["digits-copy"] * 3
        assert list(arrays["filenames"]) == [item.filename for item in ours + theirs]
        np.testing.assert_array_equal(arrays["vectors"], np.stack(vectors))

    code, said = store("means", str(tmp_path / "out" / "copy.csv"), "--dataset", "digits-copy")
    assert code == 0, said
    lines = (tmp_path / "out" / "copy.csv").read_text().splitlines()
    assert lines[0] == "item_id,dataset,filename," + ",".join(f"v{j}" for j in range(16))
    assert [line.split(",")[:3] for line in lines[1:]] == [[i.id, "digits-copy", i.filename] for i in theirs]
    np.testing.assert_allclose([float(v) for v in lines[1].split(",")[3:]], vectors[5], rtol=1e-7)

    refusals = [(("means", str(tmp_path / "all.npz")), "already exists"),
                (("means", str(tmp_path / "v.parquet")), "'v.parquet' is not a file type vectors are written as"),
                (("mean", str(tmp_path / "v.npz")), "no model named 'mean' (did you mean means?)"),
                (("means", str(tmp_path / "v.npz"), "--dataset", "nope"), "no dataset named 'nope'")]
    platform.create_model("unembedded", digits, output_type="embedding")
    refusals.append((("unembedded", str(tmp_path / "v.npz")), "model version 'unembedded' holds no feature vectors\n"
                     "  fix: python -m runner pipeline=embed model.name=unembedded stores them"))
    for args, says in refusals:
        code, said = store(*args)
        assert code == 2 and says in said, said
    written = [p for p in tmp_path.rglob("*") if p.is_file() and platform.root not in p.parents]
    assert sorted(p.name for p in written) == ["all.npz", "copy.csv"]  # nothing partial


def test_show_gives_an_embedders_vectors_and_its_embed_command_not_evaluate_or_predict(platform, digits, capsys,
                                                                                        tmp_path):
    from runner.store import main

    model = platform.create_model("means", digits, output_type="embedding", configuration={"batch_size": 8})
    (tmp_path / "means.json").write_text("{}")  # its weights: a version without any is given no command
    platform.add_artifacts(model, {"means.json": tmp_path / "means.json"}, replace=True)
    bound(PixelMeans(), platform, model).embed_items(list(next(platform.iter_items(digits, SUBSETS["test"],
                                                                                   page_size=5))))
    trained_in(platform.get_model(model.id), tmp_path / "run", tmp_path, {"adapter": "means", "dataset": "digits"})
    assert main(["--root", str(platform.root), "show", "means", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["vectors"] == {"count": 5, "size": 16}
    assert shown["use"] == {"embed": f"cd {tmp_path} && python -m runner pipeline=embed model.name=means adapter=means "
                                     "dataset=digits"}
    assert main(["--root", str(platform.root), "show", "means"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^vectors +5 of 16 values \(python -m runner.store vectors means <file.npz\|.csv> writes them\)$",
                     out, re.MULTILINE), out
    assert "pipeline=evaluate" not in out and "pipeline=predict" not in out
