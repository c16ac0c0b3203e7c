"""A colour-blob box "detector", written as public Dataloop adapters are.

Finds solid coloured rectangles on a plain background: pixels far (in RGB) from the background
colour (the median of the image border) are foreground; each is given the label whose colour is
nearest; the 4-connected blobs of one label become boxes. ``train`` learns each label's colour from
the ground-truth boxes of the json files, the smallest blob worth keeping, and picks the foreground
threshold with the best F1 at IoU 0.5 on the train images (one "epoch" per candidate threshold).

Configuration: ``thresholds`` (candidates, default [10, 20, 40, 80, 160]), ``min_area_fraction``
(0.5 of the smallest training box), ``weights_filename`` (``colors.json``). ``train`` sets
``label_colors``, ``threshold``, ``min_area``, ``embeddings_size`` and ``weights_filename``.
"""

import json
import logging
import os

import dtlpy as dl
import numpy as np
from PIL import Image

logger = logging.getLogger('box-detector-adapter')


def connected_components(mask):
    """Lists of (row, col) pixels of the 4-connected components of a boolean mask."""
    seen = np.zeros(mask.shape, dtype=bool)
    height, width = mask.shape
    components = list()
    for row, col in np.argwhere(mask):
        if seen[row, col]:
            continue
        seen[row, col] = True
        stack, pixels = [(row, col)], list()
        while stack:
            r, c = stack.pop()
            pixels.append((r, c))
            for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= nr < height and 0 <= nc < width and mask[nr, nc] and not seen[nr, nc]:
                    seen[nr, nc] = True
                    stack.append((nr, nc))
        components.append(np.asarray(pixels))
    return components


def box_iou(a, b):
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    intersection = max(0.0, right - left) * max(0.0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if union > 0 else 0.0


class ColorBoxDetector(dl.BaseModelAdapter):
    def load(self, local_path, **kwargs):
        weights_filename = self.configuration.get('weights_filename', 'colors.json')
        path = os.path.join(local_path, weights_filename)
        self.model = None
        if os.path.isfile(path):
            with open(path) as f:
                self.model = json.load(f)
            logger.info(f'loaded label colours from {path}')

    def save(self, local_path, **kwargs):
        weights_filename = self.configuration.get('weights_filename', 'colors.json')
        with open(os.path.join(local_path, weights_filename), 'w') as f:
            json.dump(self.model, f, indent=2)
        self.configuration['weights_filename'] = weights_filename

    def prepare_item_func(self, item: dl.Item):
        return item.download(save_locally=False, to_array=True)

    # -- the detector ------------------------------------------------------------------------------

    @staticmethod
    def background_color(image):
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        return np.median(border, axis=0)

    def detect(self, image, model=None, threshold=None):
        """[(label, left, top, right, bottom, confidence)] of an HWC RGB image."""
        model = model or self.model
        threshold = model['threshold'] if threshold is None else threshold
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        image = image[:, :, :3]
        labels = list(model['label_colors'])
        colors = np.asarray([model['label_colors'][label] for label in labels], dtype=np.float32)
        foreground = np.linalg.norm(image - self.background_color(image), axis=-1) > threshold
        distances = np.linalg.norm(image[:, :, None, :] - colors[None, None, :, :], axis=-1)
        nearest = np.argmin(distances, axis=-1)
        detections = list()
        for label_id, label in enumerate(labels):
            for pixels in connected_components(foreground & (nearest == label_id)):
                if len(pixels) < model['min_area']:
                    continue
                top, left = pixels.min(axis=0)
                bottom, right = pixels.max(axis=0) + 1
                fill = len(pixels) / float((bottom - top) * (right - left))
                closeness = float(np.exp(-distances[pixels[:, 0], pixels[:, 1], label_id].mean() / 100.0))
                detections.append((label, float(left), float(top), float(right), float(bottom),
                                   float(np.clip(fill * closeness, 1e-3, 1.0))))
        return detections

    # -- training ----------------------------------------------------------------------------------

    def load_subset(self, data_path, subset):
        """(image, [(label, left, top, right, bottom)]) per item, from the json files of prepare_data."""
        samples = list()
        json_dir = os.path.join(data_path, subset, 'json')
        for root, _dirs, files in os.walk(json_dir):
            for filename in sorted(files):
                with open(os.path.join(root, filename)) as f:
                    item_json = json.load(f)
                boxes = list()
                for annotation in item_json.get('annotations', []):
                    if annotation['type'] != 'box':
                        continue
                    (x1, y1), (x2, y2) = [(p['x'], p['y']) for p in annotation['coordinates']]
                    boxes.append((annotation['label'], min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
                image_path = os.path.join(data_path, subset, 'items', item_json['filename'].lstrip('/'))
                image = np.asarray(Image.open(image_path).convert('RGB'))
                samples.append((image, boxes))
        return samples

    @staticmethod
    def f1_at_50(model, samples, detect):
        tp = fp = fn = 0
        for image, boxes in samples:
            detections = detect(image, model=model)
            matched = set()
            for label, left, top, right, bottom, _confidence in detections:
                candidates = [(box_iou((left, top, right, bottom), box[1:]), i) for i, box in enumerate(boxes)
                              if box[0] == label and i not in matched]
                best = max(candidates, default=(0.0, None))
                if best[0] >= 0.5:
                    matched.add(best[1])
                    tp += 1
                else:
                    fp += 1
            fn += len(boxes) - len(matched)
        return 2 * tp / float(2 * tp + fp + fn) if tp + fp + fn else 1.0

    def train(self, data_path, output_path, **kwargs):
        thresholds = self.configuration.get('thresholds', [10, 20, 40, 80, 160])
        min_area_fraction = self.configuration.get('min_area_fraction', 0.5)
        on_epoch_end_callback = kwargs.get('on_epoch_end_callback')

        samples = self.load_subset(data_path, 'train')
        pixels_per_label, areas = dict(), list()
        for image, boxes in samples:
            for label, left, top, right, bottom in boxes:
                inner = image[int(top) + 1:int(bottom) - 1, int(left) + 1:int(right) - 1].reshape(-1, 3)
                if len(inner):
                    pixels_per_label.setdefault(label, list()).append(np.median(inner, axis=0))
                areas.append((right - left) * (bottom - top))
        if not pixels_per_label:
            raise ValueError(f'no box annotations in the train subset at {data_path}')
        # labels in the model's id order
        label_colors = {label: [float(v) for v in np.mean(pixels_per_label[label], axis=0)]
                        for label in self.model_entity.label_to_id_map if label in pixels_per_label}
        model = {'label_colors': label_colors, 'min_area': float(min_area_fraction * min(areas)), 'threshold': None}

        validation = self.load_subset(data_path, 'validation') \
            if os.path.isdir(os.path.join(data_path, 'validation')) else samples
        val_scores = list()
        for epoch, threshold in enumerate(thresholds):
            model['threshold'] = float(threshold)
            train_f1 = self.f1_at_50(model, samples, self.detect)
            val_f1 = self.f1_at_50(model, validation, self.detect)
            logger.info(f'threshold {threshold}: train F1@0.5 {train_f1:.4f}, val F1@0.5 {val_f1:.4f}')
            self.model_entity.metrics.create(
                samples=[dl.PlotSample(figure='F1 at IoU 0.5', legend='train', x=epoch, y=train_f1),
                         dl.PlotSample(figure='F1 at IoU 0.5', legend='val', x=epoch, y=val_f1),
                         dl.PlotSample(figure='threshold', legend='candidate', x=epoch, y=float(threshold))],
                dataset_id=self.model_entity.dataset_id)
            val_scores.append(val_f1)
            if on_epoch_end_callback is not None:
                on_epoch_end_callback(i_epoch=epoch, n_epoch=len(thresholds))
        # the middle one of the thresholds that share the best validation F1: the widest margin
        best = [float(t) for t, score in zip(thresholds, val_scores, strict=True) if score == max(val_scores)]
        best_threshold = best[len(best) // 2]
        logger.info(f'threshold {best_threshold} (validation F1@0.5 {max(val_scores):.4f})')
        model['threshold'] = best_threshold
        self.model = model
        self.configuration['label_colors'] = label_colors
        self.configuration['threshold'] = best_threshold
        self.configuration['min_area'] = model['min_area']
        self.configuration['embeddings_size'] = 4 * len(label_colors) + 3

    # -- inference ---------------------------------------------------------------------------------

    def predict(self, batch, **kwargs):
        batch_annotations = list()
        for image in batch:
            collection = dl.AnnotationCollection()
            for label, left, top, right, bottom, confidence in self.detect(image):
                collection.add(annotation_definition=dl.Box(left=left, top=top, right=right, bottom=bottom,
                                                            label=label),
                               model_info={'name': self.model_entity.name,
                                           'model_id': self.model_entity.id,
                                           'confidence': confidence})
            batch_annotations.append(collection)
        return batch_annotations

    def embed(self, batch, **kwargs):
        """Per label: blob count, covered fraction, mean centre x and y (relative); then the background colour."""
        labels = list(self.model['label_colors'])
        vectors = list()
        for image in batch:
            height, width = image.shape[:2]
            vector = np.zeros(4 * len(labels) + 3, dtype=np.float32)
            for label, left, top, right, bottom, _confidence in self.detect(image):
                offset = 4 * labels.index(label)
                vector[offset] += 1
                vector[offset + 1] += (right - left) * (bottom - top) / float(height * width)
                vector[offset + 2] += (left + right) / (2.0 * width)
                vector[offset + 3] += (top + bottom) / (2.0 * height)
            for offset in range(0, 4 * len(labels), 4):
                if vector[offset] > 0:
                    vector[offset + 2:offset + 4] /= vector[offset]
            rgb = np.asarray(image, dtype=np.float32)
            rgb = np.stack([rgb] * 3, axis=-1) if rgb.ndim == 2 else rgb[:, :, :3]
            vector[-3:] = self.background_color(rgb) / 255.0
            vectors.append(vector)
        return vectors
