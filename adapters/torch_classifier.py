"""Image classification with a small convolutional network in PyTorch, trained on the model's subsets.

The network: one block per entry of ``conv_channels`` (3x3 convolution, batch norm, ReLU, 2x2 max
pooling), an adaptive average pool to 4x4, a hidden fully connected layer of ``hidden_size`` units
with ReLU (the features ``embed`` returns) and a linear head with one output per label. Images are
converted to grayscale (``channels: 1``) or RGB (``channels: 3``), resized to
``input_size`` x ``input_size`` (bilinear) and scaled to [-1, 1]; any image size works.

Configuration keys (``model.configuration``; read with these defaults, never written; all checked
when the model is loaded, so a bad value fails before any data is exported):

- ``epochs`` (15): passes over the train subset.
- ``learning_rate`` (0.001), ``optimizer`` (``adam`` | ``sgd``), ``momentum`` (0.9, sgd only),
  ``weight_decay`` (0.0).
- ``batch_size`` (32): the model's batch size, for training and prediction alike.
- ``input_size`` (16): the side images are resized to. ``channels`` (1): 1 grayscale, 3 RGB.
- ``conv_channels`` ([16, 32]): output channels of each convolution block. ``hidden_size`` (64):
  width of the hidden layer, which is the size of the ``embed`` vectors.
- ``seed`` (0): weight initialisation and the shuffling of every epoch; on CPU the same seed gives
  the same weights, bit for bit.
- ``device`` (``auto``): ``auto`` is CUDA when ``torch.cuda.is_available()``, else CPU; or any
  ``torch.device`` string (``cpu``, ``cuda:1``).
- ``num_threads`` (1): CPU threads torch uses while training (0: torch's default, one per core). A
  network this small trains fastest on one thread, which also keeps its speed when other processes
  load the cores and its result independent of the core count.

Training reads ``data_path/train`` (``items/`` + ``json/`` as ``prepare_data`` writes them; the
first class annotation of each item is its label) and, when present, ``data_path/validation`` for a
per-epoch validation loss and accuracy. Every epoch it reports ``loss`` (train, validation) and
``accuracy`` (train, validation) with ``model.metrics.create``, writes the checkpoint ``last.pt``
into ``output_path`` and calls ``on_epoch_end_callback(epoch, epochs)``.

Artifacts: ``weights.pt`` (the network's ``state_dict``), ``model.json`` (labels in output order,
the architecture, epochs trained, whether training was interrupted) and ``last.pt`` (``epoch``,
``epochs``, ``model_state``, ``optimizer_state``, ``labels``, ``architecture``, ``optimizer``).
Every ``.pt`` file is read with ``torch.load(..., weights_only=True)``: tensors and plain
containers only, never arbitrary pickled objects.

Resume: when a training crashes, the runner saves ``output_path`` and marks the model ``failed``;
``save`` then writes the weights of the last completed epoch and ``"interrupted": true``. Loading
such a model (status ``failed``, or artifacts marked interrupted) restores the network and the
optimizer from ``last.pt``, and the next ``train`` continues at the following epoch, so the total
stays ``epochs``. (``train_model`` marks the model ``training`` before it loads the artifacts, so
the marker, not the status, is what tells ``load`` inside a training; a clone of an interrupted model
version carries the marker and resumes too.) Loading a completed model and training it again fine-tunes its weights for
``epochs`` more epochs with a fresh optimizer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

import dtlpy as dl
import numpy as np
from PIL import Image

from runner import BaseModelAdapter
from runner.images import eight_bit

from .artifacts import check_own_artifacts
from .settings import whole

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.pt"
DESCRIPTION_FILE = "model.json"
CHECKPOINT_FILE = "last.pt"
FORMAT_VERSION = 1
DEFAULTS = {"epochs": 15, "learning_rate": 0.001, "optimizer": "adam", "momentum": 0.9, "weight_decay": 0.0,
            "batch_size": 32, "input_size": 16, "channels": 1, "conv_channels": [16, 32], "hidden_size": 64,
            "seed": 0, "device": "auto", "num_threads": 1}
ARCHITECTURE_KEYS = ("input_size", "channels", "conv_channels", "hidden_size")
OPTIMIZERS = ("adam", "sgd")
POOLED_SIDE = 4


def build_network(labels: list[str], architecture: dict):
    """The CNN for ``labels`` (output order) and ``architecture`` (the ``ARCHITECTURE_KEYS``)."""
    import torch
    from torch import nn

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            layers, in_channels, side = [], int(architecture["channels"]), int(architecture["input_size"])
            for out_channels in architecture["conv_channels"]:
                layers += [nn.Conv2d(in_channels, int(out_channels), kernel_size=3, padding=1),
                           nn.BatchNorm2d(int(out_channels)), nn.ReLU()]
                if side >= 2:
                    layers.append(nn.MaxPool2d(2))
                    side //= 2
                in_channels = int(out_channels)
            layers.append(nn.AdaptiveAvgPool2d(POOLED_SIDE))
            self.features = nn.Sequential(*layers)
            self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * POOLED_SIDE ** 2,
                                                                int(architecture["hidden_size"])), nn.ReLU())
            self.head = nn.Linear(int(architecture["hidden_size"]), len(labels))

        def embed(self, x: torch.Tensor) -> torch.Tensor:
            return self.hidden(self.features(x))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.embed(x))

    network = SmallCNN()
    network.labels = [str(label) for label in labels]
    network.architecture = {key: architecture[key] for key in ARCHITECTURE_KEYS}
    return network


def to_pixels(image, input_size: int, channels: int) -> np.ndarray:
    """An HWC (or HW) uint8 array or a PIL image → ``input_size`` x ``input_size`` x ``channels`` uint8."""
    if not isinstance(image, Image.Image):
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[:, :, 0]
        image = Image.fromarray(array.astype(np.uint8, copy=False))
    image = image.convert("L" if channels == 1 else "RGB").resize((input_size, input_size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def _read_pixels(path: Path, input_size: int, channels: int) -> np.ndarray:
    with Image.open(path) as image:
        return to_pixels(eight_bit(image), input_size, channels)


def to_tensor(pixels, device):
    """NHWC uint8 (numpy or tensor) → NCHW float in [-1, 1] on ``device``."""
    import torch

    tensor = torch.as_tensor(pixels).to(device)
    return tensor.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


@contextlib.contextmanager
def deterministic_training(num_threads: int):
    """Inside: ``torch.use_deterministic_algorithms(True, warn_only=True)`` and ``num_threads`` CPU
    threads (0: torch's default); the previous settings after."""
    import torch

    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        if num_threads:
            torch.set_num_threads(threads)


def _labelled_files(subset_path: Path) -> list[tuple[Path, str]]:
    rows = []
    for json_file in sorted((subset_path / "json").rglob("*.json")):
        item = json.loads(json_file.read_text())
        classes = [a["label"] for a in item.get("annotations", []) if a.get("type") == "class"]
        if classes:
            rows.append((subset_path / "items" / item["filename"].lstrip("/"), str(classes[0])))
    return rows


class TorchImageClassifier(BaseModelAdapter):
    # -- configuration ---------------------------------------------------------------------------

    def setting(self, key: str):
        """``configuration[key]`` or the module default; checked. Reading never writes."""
        if key in ("epochs", "batch_size", "input_size", "hidden_size", "seed", "num_threads"):
            return whole(self.configuration, key, DEFAULTS[key], minimum=0 if key in ("seed", "num_threads") else 1)
        value = self.configuration.get(key, DEFAULTS[key])
        problem = None
        if key in ("learning_rate", "momentum", "weight_decay"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                problem = "a number >= 0"
            else:
                value = float(value)
        elif key == "optimizer":
            value = str(value).lower()
            problem = None if value in OPTIMIZERS else f"one of {list(OPTIMIZERS)}"
        elif key == "channels":
            problem = None if value in (1, 3) else "1 (grayscale) or 3 (RGB)"
        elif key == "conv_channels":
            ok = isinstance(value, (list, tuple)) and value and all(
                isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in value)
            problem = None if ok else "a non-empty list of positive integers"
            value = [int(c) for c in value] if ok else value
        if problem:
            raise ValueError(f"model configuration {key!r} must be {problem}, got {value!r}")
        return value

    def check_configuration(self) -> None:
        """Every configuration key this adapter reads, checked (a ValueError names the first bad one)."""
        for key in DEFAULTS:
            self.setting(key)
        self.device()

    def architecture_setting(self) -> dict:
        return {key: self.setting(key) for key in ARCHITECTURE_KEYS}

    def device(self):
        import torch

        name = str(self.setting("device"))
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"model configuration device {name!r}: CUDA is not available here; use 'auto' or 'cpu'")
        return device

    def _new_network(self, labels: list[str], architecture: dict):
        import torch

        with torch.random.fork_rng(devices=[]):  # seeded initialisation; the global generator is untouched
            torch.manual_seed(self.setting("seed"))
            return build_network(labels, architecture)

    def _status(self) -> str | None:
        try:
            return self.model_entity.status
        except Exception:  # noqa: BLE001 - load(local_path) without a model
            return None

    # -- load / save -----------------------------------------------------------------------------

    def load(self, local_path, **kwargs):
        import torch

        if self._model_entity is not None:
            self.check_configuration()  # a bad key fails here, before prepare_data exports anything
        root = Path(local_path)
        description_path, weights_path, checkpoint_path = (root / DESCRIPTION_FILE, root / WEIGHTS_FILE,
                                                           root / CHECKPOINT_FILE)
        if not any(path.exists() for path in (description_path, weights_path, checkpoint_path)):
            check_own_artifacts(root, [WEIGHTS_FILE, DESCRIPTION_FILE, CHECKPOINT_FILE], self._status(), logger)
        description = json.loads(description_path.read_text()) if description_path.exists() else None
        self._resume = None
        self._training = None
        interrupted = self._status() == "failed" or description is None or bool(description.get("interrupted"))
        if checkpoint_path.exists() and interrupted:
            checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
            self.model = build_network(checkpoint["labels"], checkpoint["architecture"])
            self.model.load_state_dict(checkpoint["model_state"])
            self._resume = {key: checkpoint[key] for key in ("epoch", "optimizer", "optimizer_state")}
            logger.info("resuming from %s: epoch %d done", checkpoint_path, checkpoint["epoch"] + 1)
        elif description is not None:
            if not weights_path.exists():
                raise ValueError(f"{description_path} describes a network but {weights_path} is missing")
            self.model = build_network(description["labels"], description["architecture"])
            self.model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        elif weights_path.exists():
            raise ValueError(f"{weights_path} has no {DESCRIPTION_FILE} next to it: cannot rebuild the network")
        else:  # not trained yet: a fresh network for the model's labels (none yet: built in train)
            labels = [str(label) for label in (getattr(self._model_entity, "labels", None) or [])]
            self.model = self._new_network(labels, self.architecture_setting()) if labels else None

    def save(self, local_path, **kwargs):
        import torch

        if self.model is None:
            raise ValueError("nothing to save: the classifier has no network (the model has no labels "
                             "and has not been trained)")
        training = getattr(self, "_training", None) or {}
        torch.save({k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                   os.path.join(local_path, WEIGHTS_FILE))
        description = {"format": FORMAT_VERSION, "labels": self.model.labels, "architecture": self.model.architecture,
                       "epochs_trained": training.get("epochs_trained"),
                       "interrupted": bool(training.get("interrupted", False)),
                       "torch_version": torch.__version__}
        Path(local_path, DESCRIPTION_FILE).write_text(json.dumps(description, indent=2))

    # -- train -----------------------------------------------------------------------------------

    def _load_subset(self, subset_path: Path, labels: list[str] | None):
        """(NHWC uint8 tensor, label index tensor, labels); ``labels`` None → the sorted labels found."""
        import torch

        rows = _labelled_files(subset_path)
        if not rows:
            raise ValueError(f"no labelled images under {subset_path}: the subset needs class annotations")
        if labels is None:
            labels = sorted({label for _path, label in rows})
        index = {label: i for i, label in enumerate(labels)}
        unknown = sorted({label for _path, label in rows if label not in index})
        if unknown:
            raise ValueError(f"{subset_path.name} has labels the network does not have: {unknown}; its labels "
                             f"are {labels}")
        architecture = self.model.architecture if self.model is not None else self.architecture_setting()
        size, channels = architecture["input_size"], architecture["channels"]
        pixels = np.stack([_read_pixels(path, size, channels) for path, _label in rows])
        targets = torch.tensor([index[label] for _path, label in rows], dtype=torch.long)
        return torch.from_numpy(pixels), targets, labels

    def _make_optimizer(self, name: str, parameters):
        import torch

        learning_rate, weight_decay = self.setting("learning_rate"), self.setting("weight_decay")
        if name == "sgd":
            return torch.optim.SGD(parameters, lr=learning_rate, momentum=self.setting("momentum"),
                                   weight_decay=weight_decay)
        return torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay)

    def _run_epoch(self, epoch: int, batches, optimizer) -> tuple[float, float]:
        """One pass of optimizer steps over ``batches`` of (NHWC uint8, targets): (mean loss, accuracy)."""
        from torch.nn import functional

        device = next(self.model.parameters()).device
        self.model.train()
        total_loss, correct, count = 0.0, 0, 0
        for pixels, targets in batches:
            images, targets = to_tensor(pixels, device), targets.to(device)
            optimizer.zero_grad(set_to_none=True)
            logits = self.model(images)
            loss = functional.cross_entropy(logits, targets)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(targets)
            correct += int((logits.detach().argmax(dim=1) == targets).sum())
            count += len(targets)
        return total_loss / max(count, 1), correct / max(count, 1)

    def _score(self, pixels, targets) -> tuple[float, float]:
        """(mean loss, accuracy) of the network on a subset, in batches, without gradients."""
        import torch
        from torch.nn import functional

        device = next(self.model.parameters()).device
        batch_size = self.setting("batch_size")
        self.model.eval()
        total_loss, correct = 0.0, 0
        with torch.inference_mode():
            for start in range(0, len(targets), batch_size):
                logits = self.model(to_tensor(pixels[start:start + batch_size], device))
                batch_targets = targets[start:start + batch_size].to(device)
                total_loss += float(functional.cross_entropy(logits, batch_targets, reduction="sum"))
                correct += int((logits.argmax(dim=1) == batch_targets).sum())
        return total_loss / len(targets), correct / len(targets)

    def _write_checkpoint(self, output_path: Path, epoch: int, epochs: int, optimizer_name: str, optimizer) -> None:
        import torch

        checkpoint = {"epoch": epoch, "epochs": epochs, "labels": self.model.labels,
                      "architecture": self.model.architecture, "optimizer": optimizer_name,
                      "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                      "optimizer_state": optimizer.state_dict()}
        partial = output_path / f".{CHECKPOINT_FILE}.partial"
        torch.save(checkpoint, partial)
        os.replace(partial, output_path / CHECKPOINT_FILE)  # a crash mid-write leaves the previous one

    def train(self, data_path, output_path, **kwargs):
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        data_path, output_path = Path(data_path), Path(output_path)
        callback = kwargs.get("on_epoch_end_callback")
        self.check_configuration()
        configured = self.architecture_setting()
        if self.model is not None and self.model.architecture != configured:
            logger.warning("the network loaded from the model's artifacts has the architecture %s; the "
                           "configuration's %s does not apply to it", self.model.architecture, configured)
        epochs, seed, batch_size = self.setting("epochs"), self.setting("seed"), self.setting("batch_size")
        resume = getattr(self, "_resume", None)
        optimizer_name = resume["optimizer"] if resume else self.setting("optimizer")

        train_pixels, train_targets, labels = self._load_subset(
            data_path / "train", None if self.model is None else self.model.labels)
        if self.model is None:
            self.model = self._new_network(labels, self.architecture_setting())
        validation = None
        if (data_path / "validation" / "json").is_dir():
            if _labelled_files(data_path / "validation"):
                validation = self._load_subset(data_path / "validation", labels)[:2]
            else:
                logger.warning("the validation subset has no class annotations: no validation loss or accuracy")

        device = self.device()
        self.model.to(device)
        optimizer = self._make_optimizer(optimizer_name, self.model.parameters())
        start = 0
        if resume:
            optimizer.load_state_dict(resume["optimizer_state"])
            start = int(resume["epoch"]) + 1
            logger.info("resuming training at epoch %d of %d", start + 1, epochs)
        generator = torch.Generator()
        loader = DataLoader(TensorDataset(train_pixels, train_targets), batch_size=batch_size, shuffle=True,
                            generator=generator, num_workers=0)
        last_good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        epochs_done = start
        self._training = {"epochs_trained": epochs_done, "interrupted": False}
        try:
            with deterministic_training(self.setting("num_threads")):
                for epoch in range(start, epochs):
                    generator.manual_seed((seed * 1_000_003 + epoch) % 2**63)  # this epoch's order, resumable
                    train_loss, train_accuracy = self._run_epoch(epoch, loader, optimizer)
                    samples = [dl.PlotSample(figure="loss", legend="train", x=epoch, y=train_loss),
                               dl.PlotSample(figure="accuracy", legend="train", x=epoch, y=train_accuracy)]
                    message = f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f} accuracy {train_accuracy:.4f}"
                    if validation is not None:
                        val_loss, val_accuracy = self._score(*validation)
                        samples += [dl.PlotSample(figure="loss", legend="validation", x=epoch, y=val_loss),
                                    dl.PlotSample(figure="accuracy", legend="validation", x=epoch, y=val_accuracy)]
                        message += f", validation loss {val_loss:.4f} accuracy {val_accuracy:.4f}"
                    self._write_checkpoint(output_path, epoch, epochs, optimizer_name, optimizer)
                    last_good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                    epochs_done = epoch + 1
                    self._training = {"epochs_trained": epochs_done, "interrupted": False}
                    logger.info(message)
                    self.model_entity.metrics.create(samples=samples, dataset_id=self.model_entity.dataset_id)
                    if callback is not None:
                        callback(epoch, epochs)
        except BaseException:
            # what save writes next (the runner saves output_path) is the last completed epoch
            self.model.load_state_dict(last_good)
            (output_path / f".{CHECKPOINT_FILE}.partial").unlink(missing_ok=True)
            self._training = {"epochs_trained": epochs_done, "interrupted": True}
            raise
        self._resume = None
        self.model.eval()

    # -- predict / embed -------------------------------------------------------------------------

    def _batch_tensor(self, batch):
        if self.model is None:
            raise ValueError("the classifier has no network: the model has no labels and has not been trained; "
                             "run the train pipeline first")
        device = self.device()
        self.model.to(device).eval()
        size, channels = self.model.architecture["input_size"], self.model.architecture["channels"]
        return to_tensor(np.stack([to_pixels(image, size, channels) for image in batch]), device)

    def predict(self, batch, **kwargs):
        import torch

        images = self._batch_tensor(batch)
        with torch.inference_mode():
            probabilities = torch.softmax(self.model(images), dim=1).cpu().numpy().astype(np.float64)
        labels = self.model.labels
        collections = []
        for row in probabilities:
            best = int(np.argmax(row))
            collection = dl.AnnotationCollection()
            collection.add(annotation_definition=dl.Classification(label=labels[best]),
                           model_info={"name": self.model_entity.name, "model_id": self.model_entity.id,
                                       "confidence": float(row[best])})
            # every class's probability: the runner's evaluation reads them for top-k accuracy and ROC-AUC
            collection.annotations[-1].metadata["user"]["model"]["scores"] = {
                label: float(p) for label, p in zip(labels, row, strict=True)}
            collections.append(collection)
        return collections

    def embed(self, batch, **kwargs):
        """The hidden layer's activations (``hidden_size`` floats) per image."""
        import torch

        images = self._batch_tensor(batch)
        with torch.inference_mode():
            features = self.model.embed(images).cpu().numpy().astype(np.float32)
        return list(features)


__all__ = ["TorchImageClassifier", "build_network"]
