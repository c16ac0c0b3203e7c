"""Image embeddings by principal component analysis (scikit-learn's ``PCA``) of resized pixels.

``train`` fits the PCA on the images of the ``train`` subset; ``embed`` projects each image on the
components and (by default) scales the vector to unit length, so a dot product is a cosine
similarity. An embedder: it has no ``predict``.

Configuration keys: ``n_components`` (vector length, default 16), ``image_size`` (side the images
are resized to, default 8), ``grayscale`` (default true), ``normalize`` (L2-normalise the vectors,
default true), ``whiten`` (scale the components to unit variance, default false).
``train`` sets ``embeddings_size`` (the feature set's vector size) to ``n_components``.

Artifacts: ``pca.npz`` (``components``, ``mean``, ``explained_variance``; read with
``allow_pickle=False``) and ``pca.json`` (the settings the vectors were made with).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from runner import BaseModelAdapter
from runner.images import eight_bit

from .artifacts import check_own_artifacts, model_status
from .settings import flag, whole

logger = logging.getLogger(__name__)

ARRAYS_FILE = "pca.npz"
SETTINGS_FILE = "pca.json"
DEFAULTS = {"n_components": 16, "image_size": 8, "grayscale": True, "normalize": True, "whiten": False}


def image_features(image: np.ndarray | Image.Image, image_size: int, grayscale: bool) -> np.ndarray:
    """An image (HWC/HW array or PIL image) resized to ``image_size`` squared, as floats in [0, 1]."""
    if isinstance(image, np.ndarray):
        array = image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image
        image = Image.fromarray(np.asarray(array, dtype=np.uint8))
    picture = image.convert("L" if grayscale else "RGB")
    if picture.size != (image_size, image_size):
        picture = picture.resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(picture, dtype=np.float32).ravel() / 255.0


class PcaEmbedder(BaseModelAdapter):
    """PCA of resized pixels: one float vector of ``n_components`` per image."""

    def load(self, local_path, **kwargs):
        arrays_path = os.path.join(local_path, ARRAYS_FILE)
        settings_path = os.path.join(local_path, SETTINGS_FILE)
        if not os.path.exists(arrays_path):
            self.model = None  # not trained yet, or the artifacts are another adapter's
            check_own_artifacts(local_path, [ARRAYS_FILE], model_status(self), logger)
            return
        with np.load(arrays_path, allow_pickle=False) as arrays:
            components = np.asarray(arrays["components"], dtype=np.float32)
            mean = np.asarray(arrays["mean"], dtype=np.float32)
            explained_variance = np.asarray(arrays["explained_variance"], dtype=np.float32)
        with open(settings_path) as f:
            settings = json.load(f)
        if components.ndim != 2 or mean.shape != (components.shape[1],):
            raise ValueError(f"{arrays_path} holds components of shape {components.shape} and a mean of shape "
                             f"{mean.shape}: they do not fit together")
        self.model = {"components": components, "mean": mean, "explained_variance": explained_variance,
                      "settings": settings}

    def save(self, local_path, **kwargs):
        if self.model is None:
            raise ValueError("nothing to save: the PCA has not been fitted (run the train pipeline first)")
        np.savez(os.path.join(local_path, ARRAYS_FILE), components=self.model["components"],
                 mean=self.model["mean"], explained_variance=self.model["explained_variance"])
        with open(os.path.join(local_path, SETTINGS_FILE), "w") as f:
            json.dump(self.model["settings"], f, indent=2, sort_keys=True)

    def train(self, data_path, output_path, **kwargs):
        from sklearn.decomposition import PCA  # sklearn is slow to import; only training needs it

        image_size = whole(self.configuration, "image_size", DEFAULTS["image_size"])
        grayscale = flag(self.configuration, "grayscale", DEFAULTS["grayscale"])
        n_components = whole(self.configuration, "n_components", DEFAULTS["n_components"])
        features = self._train_features(Path(data_path) / "train", image_size, grayscale)
        limit = min(features.shape)
        if not 1 <= n_components <= limit:
            raise ValueError(f"n_components is {n_components}, but PCA of {features.shape[0]} images of "
                             f"{features.shape[1]} values can give 1 to {limit} components; set "
                             f"configuration.n_components in that range")
        pca = PCA(n_components=n_components, whiten=flag(self.configuration, "whiten", DEFAULTS["whiten"]), svd_solver="full")
        pca.fit(features)
        components = pca.components_.astype(np.float32)
        if pca.whiten:  # fold the whitening into the components: embed stays one matrix product
            components = components / np.sqrt(pca.explained_variance_.astype(np.float32))[:, None]
        ratio = pca.explained_variance_ratio_
        self.model = {
            "components": components, "mean": pca.mean_.astype(np.float32),
            "explained_variance": pca.explained_variance_.astype(np.float32),
            "settings": {"n_components": n_components, "image_size": image_size, "grayscale": grayscale,
                         "normalize": flag(self.configuration, "normalize", DEFAULTS["normalize"]), "whiten": bool(pca.whiten),
                         "n_train_images": int(features.shape[0]),
                         "explained_variance_ratio": float(ratio.sum())},
        }
        logger.info("PCA of %d images: %d components explain %.1f%% of the variance",
                    features.shape[0], n_components, 100 * ratio.sum())
        self.configuration["embeddings_size"] = n_components  # the feature set's vector size
        callback = kwargs.get("on_epoch_end_callback")
        if callback is not None:
            callback(0, 1)

    @staticmethod
    def _train_features(subset_path: Path, image_size: int, grayscale: bool) -> np.ndarray:
        """Every image of the subset, by its Dataloop item JSON (``json/``) and file (``items/``)."""
        rows = []
        for json_file in sorted((subset_path / "json").rglob("*.json")):
            item = json.loads(json_file.read_text())
            mimetype = (item.get("metadata", {}).get("system", {}).get("mimetype") or "")
            if not mimetype.startswith("image/"):
                continue
            with Image.open(subset_path / "items" / item["filename"].lstrip("/")) as image:
                rows.append(image_features(eight_bit(image), image_size, grayscale))
        if not rows:
            raise ValueError(f"no images under {subset_path}: the train subset must select image items")
        return np.stack(rows)

    def embed(self, batch, **kwargs):
        if self.model is None:
            raise ValueError("the PCA has not been fitted: run the train pipeline first, then embed with "
                             "that model version (model.name=<version>)")
        settings = self.model["settings"]  # the vectors are made the way the components were fitted
        features = np.stack([image_features(image, settings["image_size"], settings["grayscale"])
                             for image in batch])
        vectors = (features - self.model["mean"]) @ self.model["components"].T
        if self.configuration.get("normalize", settings.get("normalize", True)):
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1.0)
        return [row.astype(np.float32) for row in vectors]


__all__ = ["PcaEmbedder", "image_features"]
