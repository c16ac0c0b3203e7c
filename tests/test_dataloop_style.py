"""Adapters written for Dataloop (``tests/dataloop_adapters/``: subclasses of ``dl.BaseModelAdapter``
that never import ``runner``) run unedited through ``runner.app.run``: ``pipeline=train_evaluate``,
then ``pipeline=predict`` and ``pipeline=embed`` with the trained version. Their config files are
written by the tests into a temporary config folder, found through ``hydra.searchpath``."""

from __future__ import annotations

import ast
import io
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path

import dtlpy as dl
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf
from PIL import Image

from runner import app, bind_adapter_class
from runner.data.importing import ImportRecord, annotation_json, store_records
from runner.errors import UnsupportedOperation
from runner.platform.local import LocalPlatform
from runner.platform.local.store import new_id, now_iso

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
ADAPTERS_DIR = Path(__file__).resolve().parent / "dataloop_adapters"
SPLITS = ("train", "validation", "test")
# what a Dataloop adapter file may import: the packages of a Dataloop adapter image, and the stdlib
ALLOWED_IMPORTS = {"dtlpy", "numpy", "PIL", "torch", "sklearn", "os", "json", "logging"}


# -- datasets the tests make -------------------------------------------------------------------------

BOX_COLORS = {"red": (215, 45, 40), "blue": (40, 75, 220)}
BOX_SPLIT = {"train": 40, "validation": 15, "test": 25}


def box_image(rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, list[tuple[str, int, int, int, int]]]:
    """A plain background (a random grey, slight noise) with one or two solid rectangles of a label colour."""
    image = np.full((size, size, 3), rng.integers(20, 236), dtype=np.float64)
    boxes: list[tuple[str, int, int, int, int]] = []
    for _ in range(int(rng.integers(1, 3))):
        for _attempt in range(50):
            width, height = (int(v) for v in rng.integers(6, 19, size=2))
            left, top = int(rng.integers(2, size - 2 - width)), int(rng.integers(2, size - 2 - height))
            right, bottom = left + width, top + height
            if all(right + 2 <= b[1] or b[3] + 2 <= left or bottom + 2 <= b[2] or b[4] + 2 <= top for b in boxes):
                label = str(rng.choice(list(BOX_COLORS)))
                color = np.clip(np.asarray(BOX_COLORS[label]) + rng.integers(-15, 16, size=3), 0, 255)
                image[top:bottom, left:right] = color
                boxes.append((label, left, top, right, bottom))
                break
    image += rng.normal(0, 3, size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), boxes


def make_box_dataset(platform: LocalPlatform, name: str = "boxes", seed: int = 0) -> dl.Dataset:
    rng = np.random.default_rng(seed)
    records = []
    for subset, count in BOX_SPLIT.items():
        for i in range(count):
            pixels, boxes = box_image(rng)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            records.append(ImportRecord(
                filename=f"/{subset}/shapes-{i:03d}.png", mimetype="image/png", width=48, height=48,
                data=buffer.getvalue(),
                annotations=[annotation_json(dl.Box(left=left, top=top, right=right, bottom=bottom, label=label))
                             for label, left, top, right, bottom in boxes]))
    return store_records(platform, name, list(BOX_COLORS), records).dataset


TOPICS = {
    "sports": "goal match team player coach score league referee stadium season win ball".split(),
    "cooking": "recipe oven flour sugar butter bake sauce garlic onion simmer pan taste".split(),
    "weather": "rain cloud sunny storm wind forecast snow temperature humid cold thunder fog".split(),
}
FILLER = "the a of and to in is was it for on with as at this that very today again really quite some".split()
TEXT_SPLIT = {"train": 30, "validation": 10, "test": 15}  # per label


def topic_text(rng: np.random.Generator, label: str) -> str:
    """A few words of the topic, maybe one of another topic, and filler words, shuffled."""
    words = list(rng.choice(TOPICS[label], size=int(rng.integers(2, 5))))
    others = [w for topic, ws in TOPICS.items() if topic != label for w in ws]
    words += list(rng.choice(others, size=int(rng.integers(0, 2))))
    words += list(rng.choice(FILLER, size=int(rng.integers(4, 9))))
    rng.shuffle(words)
    return " ".join(str(w) for w in words).capitalize() + "."


def insert_text_items(platform: LocalPlatform, dataset: dl.Dataset, texts: list[tuple[str, str, str]]) -> None:
    """Text items ``(filename, text, label)`` straight into the store: the bytes as a blob, an item
    row with ``mimetype: text/plain``, and a ground-truth ``dl.Text`` mark spanning the text."""
    items, annotations = [], []
    for filename, text, label in texts:
        data = text.encode("utf-8")
        item_id = new_id()
        directory, name = filename.rsplit("/", 1)
        items.append({"id": item_id, "dataset_id": dataset.id, "filename": filename, "dir": directory or "/",
                      "name": name, "mimetype": "text/plain", "blob": platform.blobs.put_bytes(data),
                      "size": len(data), "metadata": {"system": {"mimetype": "text/plain", "size": len(data)}}})
        mark = annotation_json(dl.Text(text_type="block", start=0, end=len(text), label=label))
        mark.update(id=new_id(), itemId=item_id, datasetId=dataset.id, createdAt=now_iso())
        annotations.append(mark)
    assert platform.store.insert_items(items) == len(items)
    platform.store.insert_annotations(annotations)


def make_text_dataset(platform: LocalPlatform, name: str = "texts", seed: int = 0) -> dl.Dataset:
    rng = np.random.default_rng(seed)
    dataset = platform.create_dataset(name, labels=list(TOPICS))
    texts = [(f"/{subset}/{label}-{i:03d}.txt", topic_text(rng, label), label)
             for subset, count in TEXT_SPLIT.items() for label in TOPICS for i in range(count)]
    insert_text_items(platform, dataset, texts)
    return dataset


# -- the cases ---------------------------------------------------------------------------------------


@dataclass
class Case:
    module: str
    class_name: str
    adapter: dict  # the adapter config file, less _target_
    overrides: list[str]
    make_dataset: object | None  # platform -> dataset; None: the config's importer (digits)
    dataset_config: dict | None
    metric: str
    floor: float
    annotation_type: str
    artifacts: list[str]
    set_in_train: list[str]  # configuration keys the adapter sets in train
    figures: set[str]
    samples_per_epoch: int
    extra_outputs: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"tests.dataloop_adapters.{self.module}.{self.class_name}"


# floors measured on these datasets (seed 0): digits accuracy 0.97, boxes AP50 1.0, texts accuracy 0.98
CASES = {
    "torch_classifier": Case(
        module="torch_classifier", class_name="TorchClassifier",
        adapter={"name": "torch-mlp", "input_type": "image", "output_type": "class",
                 "configuration": {"num_epochs": 12, "hidden_size": 48, "learning_rate": 0.005}},
        overrides=[], make_dataset=None, dataset_config=None, metric="accuracy", floor=0.9,
        annotation_type="class", artifacts=["model.pth"],
        set_in_train=["weights_filename", "embeddings_size", "best_epoch", "best_val_accuracy",
                      "id_to_label_map", "label_to_id_map"],
        figures={"loss", "accuracy"}, samples_per_epoch=3, extra_outputs=["confusion_matrix.png"]),
    "box_detector": Case(
        module="box_detector", class_name="ColorBoxDetector",
        adapter={"name": "color-boxes", "input_type": "image", "output_type": "box",
                 "configuration": {"thresholds": [10, 20, 40, 80, 160]}},
        overrides=["dataset=boxes", "metrics=detection"], make_dataset=make_box_dataset,
        dataset_config={"name": "boxes", "source": None}, metric="AP50", floor=0.8,
        annotation_type="box", artifacts=["colors.json"],
        set_in_train=["weights_filename", "label_colors", "threshold", "min_area", "embeddings_size"],
        figures={"F1 at IoU 0.5", "threshold"}, samples_per_epoch=3, extra_outputs=["pr_curves.png"]),
    "text_classifier": Case(
        module="text_classifier", class_name="TextClassifier",
        adapter={"name": "bow-text", "input_type": "text", "output_type": "text_mark",
                 "configuration": {"n_features": 256, "num_epochs": 15}},
        overrides=["dataset=texts"], make_dataset=make_text_dataset,
        dataset_config={"name": "texts", "source": None}, metric="accuracy", floor=0.8,
        annotation_type="text_mark", artifacts=["text_model.npz"],
        set_in_train=["weights_filename", "embeddings_size", "best_epoch", "best_val_accuracy",
                      "label_to_id_map"],
        figures={"log loss", "accuracy"}, samples_per_epoch=2, extra_outputs=["confusion_matrix.png"]),
}


def write_configs(conf: Path, name: str, case: Case) -> None:
    """The case's adapter (and dataset) config files, in a config folder of their own."""
    (conf / "adapter").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"_target_": case.target, **case.adapter}), conf / "adapter" / f"{name}.yaml")
    if case.dataset_config is not None:
        (conf / "dataset").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(case.dataset_config), conf / "dataset" / f"{case.dataset_config['name']}.yaml")


def compose_config(conf: Path, *overrides: str):
    app.register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=[f"hydra.searchpath=[file://{conf}]", *overrides])


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def network_guard(monkeypatch):
    """Records (and refuses) any socket connection and any request the local platform refused."""
    attempts: list[str] = []

    def refuse_connect(self, address, *args, **kwargs):
        attempts.append(f"socket connect {address!r}")
        raise OSError(f"network access in a test: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    original_init = UnsupportedOperation.__init__

    def record_unsupported(self, what, *args, **kwargs):
        attempts.append(f"unsupported: {what}")
        original_init(self, what, *args, **kwargs)

    monkeypatch.setattr(UnsupportedOperation, "__init__", record_unsupported)
    return attempts


# -- the adapters are Dataloop adapters ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_adapter_is_written_for_dataloop(name):
    case = CASES[name]
    source = (ADAPTERS_DIR / f"{case.module}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert "runner" not in imported and imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
    adapter_class = get_class(case.target)
    assert adapter_class.__bases__ == (dl.BaseModelAdapter,)
    bound = bind_adapter_class(adapter_class)
    assert issubclass(bound, adapter_class)
    for user_function in ("load", "save", "train", "predict", "embed"):
        assert getattr(bound, user_function) is getattr(adapter_class, user_function)


# -- train_evaluate, predict, embed through runner.app.run ---------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_train_evaluate_predict_embed_through_the_runner(name, tmp_path, dataloop_home, network_guard):
    case = CASES[name]
    conf = tmp_path / "conf"
    write_configs(conf, name, case)
    platform = LocalPlatform(dataloop_home / "local")  # the platform the default config uses
    if case.make_dataset is not None:
        case.make_dataset(platform)
    overrides = [f"adapter={name}", *case.overrides]

    # train_evaluate: a new version, trained and scored
    cfg = compose_config(conf, *overrides, "pipeline=train_evaluate")
    assert cfg.adapter._target_ == case.target
    objective = app.run(cfg, tmp_path / "train")
    out = tmp_path / "train"
    metrics = read_json(out / "metrics.json")
    assert metrics[case.metric] >= case.floor, metrics[case.metric]
    assert objective == metrics[cfg.metrics.objective]
    assert metrics["problems"] == {}  # every prediction well-formed: a known label, a confidence
    version = read_json(out / "model.json")
    assert version["status"] == "trained"
    assert version["output_type"] == case.annotation_type
    assert version["artifacts"] == case.artifacts
    for output in ("data.json", "training_curves.png", *case.extra_outputs):
        assert (out / output).is_file(), output

    model = platform.get_model(name=version["name"])
    for key in case.set_in_train:  # configuration the adapter set in train is persisted on the version
        assert key in version["configuration"], key
        assert model.configuration[key] == version["configuration"][key], key
    for key, value in case.adapter["configuration"].items():
        assert model.configuration[key] == value
    samples = model.metrics.list()  # what train reported with model.metrics.create
    assert {sample.figure for sample in samples} == case.figures
    epochs = {sample.x for sample in samples}
    assert epochs == set(range(len(epochs))) and len(samples) == case.samples_per_epoch * len(epochs)
    assert all(np.isfinite(sample.y) for sample in samples)
    dataset = platform.get_dataset(dataset_id=model.dataset_id)
    subsets = version["subsets"]
    models_after_training = len(platform.list_models())
    by_model = {"filter": {"metadata.system.model.name": version["name"]}, "resource": "annotations"}
    test_items = [item for page in platform.iter_items(dataset, subsets["test"]) for item in page]
    from_evaluate = {a["id"] for rows in platform.annotations_of(test_items, by_model).values() for a in rows}

    # predict with that version: its annotations on every test item, of the declared type
    app.run(compose_config(conf, *overrides, "pipeline=predict", f"model.name={version['name']}"),
            tmp_path / "predict")
    assert read_json(tmp_path / "predict" / "model.json")["id"] == version["id"]
    predicted = platform.annotations_of(test_items, by_model)
    # the predict run replaced the evaluate step's predictions: new annotations, as many, none kept
    from_predict = {a["id"] for rows in predicted.values() for a in rows}
    assert len(from_predict) == len(from_evaluate) and not from_predict & from_evaluate
    assert len(test_items) == read_json(tmp_path / "predict" / "data.json")["items_per_subset"]["test"]
    assert all(predicted[item.id] for item in test_items)
    assert sum(len(rows) for rows in predicted.values()) >= len(test_items)
    for rows in predicted.values():
        for annotation in rows:
            assert annotation["type"] == case.annotation_type
            assert annotation["metadata"]["system"]["model"]["model_id"] == version["id"]
            assert annotation["label"] in model.labels
            assert 0 < annotation["metadata"]["user"]["model"]["confidence"] <= 1
    if case.annotation_type == "text_mark":  # the mark spans the whole text
        item = test_items[0]
        text = item.download(save_locally=False).read().decode("utf-8")
        (mark,) = predicted[item.id]
        assert (mark["coordinates"]["start"], mark["coordinates"]["end"]) == (0, len(text))
    other = {"filter": {"metadata.system.model.name": {"$exists": True}}, "resource": "annotations"}
    outside = [item for page in platform.iter_items(dataset, subsets["train"]) for item in page]
    assert not any(platform.annotations_of(outside, other).values())  # predict_subset: test only

    # embed with that version: a vector for every item of the dataset
    app.run(compose_config(conf, *overrides, "pipeline=embed", f"model.name={version['name']}"),
            tmp_path / "embed")
    ids, matrix = platform.get_model(name=version["name"]).feature_set.features.vectors()
    all_ids = {item.id for page in platform.iter_items(dataset, None) for item in page}
    assert len(ids) == len(set(ids)) == len(all_ids) and set(ids) == all_ids
    assert matrix.shape == (len(all_ids), version["configuration"]["embeddings_size"])
    assert np.isfinite(matrix).all() and np.abs(matrix).sum(axis=1).min() > 0

    # nothing retrained, no version added; no socket opened and no request refused: all ran locally
    assert len(platform.list_models()) == models_after_training
    stored = platform.get_model(name=version["name"])
    assert stored.status == "trained" and stored.id == version["id"]
    assert network_guard == []


def test_binding_a_dataloop_class_does_not_repeat_dtlpys_model_info_warning(caplog):
    import logging

    from runner import bind_adapter_class
    from tests.sample_adapters import CentroidAdapter

    with caplog.at_level(logging.WARNING):
        bind_adapter_class(CentroidAdapter)()
        bind_adapter_class(CentroidAdapter)()
    # dtlpy's __init__ says model_info.name is aligned with model.name; the runner's _stamp does it
    assert not [r for r in caplog.records if "model_info.name" in r.getMessage()]


ROUNDS_ADAPTER = '''import json
import os

import dtlpy as dl


class Rounds(dl.BaseModelAdapter):
    """Counts its trainings; as public adapters do, save records its weights file in the configuration."""

    def load(self, local_path, **kwargs):
        path = os.path.join(local_path, self.configuration.get('weights_filename', 'missing.json'))
        self.rounds = json.load(open(path))['rounds'] if os.path.isfile(path) else 0

    def save(self, local_path, **kwargs):
        with open(os.path.join(local_path, 'best.json'), 'w') as f:
            json.dump({'rounds': self.rounds}, f)
        self.configuration['weights_filename'] = 'best.json'

    def train(self, data_path, output_path, **kwargs):
        self.rounds += 1
'''


def test_training_on_from_a_version_keeps_the_configuration_its_adapter_wrote(tmp_path, dataloop_home, monkeypatch):
    """``weights_filename``, written by ``save`` and not in the run's config, still names the weights a
    version trained from it loads: the run's configuration is merged over the version's, as dtlpy's clone does."""
    (tmp_path / "rounds_adapter.py").write_text(ROUNDS_ADAPTER)
    monkeypatch.syspath_prepend(str(tmp_path))
    conf = tmp_path / "conf"
    (conf / "adapter").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"_target_": "rounds_adapter.Rounds", "name": "rounds", "input_type": "image",
                                     "output_type": "class", "configuration": {"note": "first"}}),
                   conf / "adapter" / "rounds.yaml")
    platform = LocalPlatform(dataloop_home / "local")
    names = []
    for run, given in enumerate(([], ["adapter.configuration.note=second"])):
        model = [f"model.name={names[-1]}"] if names else []
        app.run(compose_config(conf, "adapter=rounds", "pipeline=train", *model, *given), tmp_path / f"run{run}")
        names.append(read_json(tmp_path / f"run{run}" / "model.json")["name"])
    first, second = (platform.get_model(name=name) for name in names)
    assert second.name.startswith("rounds-digits-") and second.configuration["weights_filename"] == "best.json"
    assert second.configuration["note"] == "second"  # the run's own keys win
    weights = Path(second.artifacts.download(local_path=str(tmp_path / "weights"))) / "best.json"
    assert read_json(weights) == {"rounds": 2}  # trained on from the first version's weights, not from scratch
    assert first.configuration["note"] == "first" and first.configuration["weights_filename"] == "best.json"
