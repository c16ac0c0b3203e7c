"""Images as the adapters read them (runner.images.eight_bit): the same 8-bit pixels in training, from
the files prepare_data writes, and in prediction, from prepare_item_func."""

from __future__ import annotations

import numpy as np
from PIL import Image

from adapters.sklearn_classifier import SklearnImageClassifier
from runner.data import import_image_folder
from runner.images import eight_bit


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    gradient = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    image = Image.fromarray(gradient)
    assert image.mode == "I;16"
    assert np.asarray(image.convert("L")).mean() > 250  # what Pillow alone gives: nearly all white
    out = eight_bit(image)
    assert out.mode == "L"
    values = np.asarray(out)
    assert values.min() == 0 and values.max() == 255 and 120 < values.mean() < 135


def test_palette_and_rgba_become_their_colours():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (250, 250, 250)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    assert np.asarray(palette).max() <= 1  # palette indices, not colours
    assert np.array_equal(np.asarray(eight_bit(palette)), rgb)
    rgba = Image.fromarray(np.dstack([rgb, np.full((4, 4), 255, np.uint8)]))
    assert np.array_equal(np.asarray(eight_bit(rgba)), rgb)
    gray = Image.fromarray(rgb[:, :, 0])
    assert eight_bit(gray) is gray


def test_training_and_prediction_read_a_palette_image_alike(platform, tmp_path):
    """The sklearn adapter's features of a palette PNG: from the file under data_path (training) and
    from prepare_item_func (prediction) are the same numbers."""
    for label, shade in (("bright", 240), ("dark", 20)):
        folder = tmp_path / "photos" / label
        folder.mkdir(parents=True)
        for i in range(3):
            rgb = np.full((12, 12, 3), shade, np.uint8)
            rgb[i:i + 4, i:i + 4] = 255 - shade
            Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(folder / f"{i}.png")
    dataset = import_image_folder(platform, tmp_path / "photos", "shades").dataset
    subsets = {"train": {"filter": {"type": "file"}, "resource": "items"}}
    model = platform.create_model("shades", dataset, subsets=subsets)
    adapter = SklearnImageClassifier(model_entity=model)
    _root, data_path, _output = adapter.prepare_data(dataset)
    trained_on, _labels = adapter._load_subset(tmp_path / data_path / "train")
    items = sorted((i for page in platform.iter_items(dataset, None) for i in page), key=lambda i: i.filename)
    predicted_on = np.stack([adapter._features(adapter.prepare_item_func(item)) for item in items])
    assert np.allclose(trained_on, predicted_on)
    assert trained_on[:3].mean() > 0.7 and trained_on[3:].mean() < 0.3  # colours, not palette indices
