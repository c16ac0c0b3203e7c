"""A tiny torch image classifier (an MLP over resized pixels), written as public Dataloop adapters are.

Configuration: ``input_size`` (8), ``in_channels`` (1: grayscale, 3: RGB), ``hidden_size`` (64, also
the embedding size), ``num_epochs`` (15), ``batch_size`` (32), ``learning_rate`` (0.005),
``weights_filename`` (``model.pth``). ``train`` sets ``weights_filename``, ``embeddings_size``,
``best_epoch``, ``best_val_accuracy`` and the model's ``id_to_label_map`` / ``label_to_id_map``.
"""

import json
import logging
import os

import dtlpy as dl
import numpy as np
import torch
from PIL import Image

logger = logging.getLogger('torch-classifier-adapter')


class SmallNet(torch.nn.Module):
    def __init__(self, input_size, in_channels, hidden_size, num_classes):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(in_channels * input_size * input_size, 2 * hidden_size),
            torch.nn.ReLU(),
            torch.nn.Linear(2 * hidden_size, hidden_size),
            torch.nn.ReLU(),
        )
        self.head = torch.nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


class TorchClassifier(dl.BaseModelAdapter):
    def load(self, local_path, **kwargs):
        self.device = 'cpu'
        self.input_size = self.configuration.get('input_size', 8)
        self.in_channels = self.configuration.get('in_channels', 1)
        hidden_size = self.configuration.get('hidden_size', 64)
        num_classes = len(self.model_entity.id_to_label_map)
        self.model = SmallNet(input_size=self.input_size, in_channels=self.in_channels,
                              hidden_size=hidden_size, num_classes=num_classes)
        weights_filename = self.configuration.get('weights_filename', 'model.pth')
        weights_path = os.path.join(local_path, weights_filename)
        if os.path.isfile(weights_path):
            state_dict = torch.load(weights_path, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state_dict)
            logger.info(f'loaded weights from {weights_path}')
        else:
            logger.info(f'no weights at {weights_path}: starting from a random initialization')
        self.model.to(self.device)
        self.model.eval()

    def save(self, local_path, **kwargs):
        weights_filename = self.configuration.get('weights_filename', 'model.pth')
        torch.save(self.model.state_dict(), os.path.join(local_path, weights_filename))
        self.configuration['weights_filename'] = weights_filename

    def preprocess(self, image):
        if isinstance(image, np.ndarray):
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[:, :, 0]
            image = Image.fromarray(image.astype(np.uint8))
        image = image.convert('L' if self.in_channels == 1 else 'RGB')
        image = image.resize((self.input_size, self.input_size), Image.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
        if array.ndim == 2:
            array = array[None, :, :]
        else:
            array = array.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(array))

    def load_subset(self, data_path, subset):
        """Images and label ids of a subset, from the Dataloop json files of prepare_data."""
        label_to_id = self.model_entity.label_to_id_map
        json_dir = os.path.join(data_path, subset, 'json')
        images, labels = list(), list()
        for root, _dirs, files in os.walk(json_dir):
            for filename in sorted(files):
                with open(os.path.join(root, filename)) as f:
                    item_json = json.load(f)
                classes = [a['label'] for a in item_json.get('annotations', []) if a['type'] == 'class']
                if len(classes) == 0:
                    continue
                image_path = os.path.join(data_path, subset, 'items', item_json['filename'].lstrip('/'))
                images.append(self.preprocess(Image.open(image_path)))
                labels.append(label_to_id[classes[0]])
        if len(images) == 0:
            raise ValueError(f'no labeled images in subset {subset!r} at {json_dir}')
        return torch.stack(images), torch.tensor(labels, dtype=torch.long)

    def train(self, data_path, output_path, **kwargs):
        num_epochs = self.configuration.get('num_epochs', 15)
        batch_size = self.configuration.get('batch_size', 32)
        learning_rate = self.configuration.get('learning_rate', 0.005)
        weights_filename = self.configuration.get('weights_filename', 'model.pth')
        on_epoch_end_callback = kwargs.get('on_epoch_end_callback')

        x_train, y_train = self.load_subset(data_path, 'train')
        has_validation = os.path.isdir(os.path.join(data_path, 'validation'))
        x_val, y_val = self.load_subset(data_path, 'validation') if has_validation else (x_train, y_train)
        logger.info(f'training on {len(y_train)} images, validating on {len(y_val)}')

        optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate)
        criterion = torch.nn.CrossEntropyLoss()
        best_accuracy, best_epoch, best_state = -1.0, -1, None
        for epoch in range(num_epochs):
            self.model.train()
            order = torch.randperm(len(y_train))
            running_loss = 0.0
            for start in range(0, len(order), batch_size):
                index = order[start:start + batch_size]
                optimizer.zero_grad()
                loss = criterion(self.model(x_train[index]), y_train[index])
                loss.backward()
                optimizer.step()
                running_loss += loss.item() * len(index)
            train_loss = running_loss / len(y_train)

            self.model.eval()
            with torch.no_grad():
                val_logits = self.model(x_val)
                val_loss = criterion(val_logits, y_val).item()
                val_accuracy = (val_logits.argmax(dim=1) == y_val).float().mean().item()
            logger.info(f'epoch {epoch + 1}/{num_epochs}: train loss {train_loss:.4f}, '
                        f'val loss {val_loss:.4f}, val accuracy {val_accuracy:.4f}')
            samples = [dl.PlotSample(figure='loss', legend='train', x=epoch, y=train_loss),
                       dl.PlotSample(figure='loss', legend='val', x=epoch, y=val_loss),
                       dl.PlotSample(figure='accuracy', legend='val', x=epoch, y=val_accuracy)]
            self.model_entity.metrics.create(samples=samples, dataset_id=self.model_entity.dataset_id)
            if val_accuracy > best_accuracy:
                best_accuracy, best_epoch = val_accuracy, epoch
                best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                torch.save(best_state, os.path.join(output_path, weights_filename))  # checkpoint
            if on_epoch_end_callback is not None:
                on_epoch_end_callback(i_epoch=epoch, n_epoch=num_epochs)

        self.model.load_state_dict(best_state)
        self.model.eval()
        self.configuration['embeddings_size'] = self.configuration.get('hidden_size', 64)
        self.configuration['best_epoch'] = best_epoch
        self.configuration['best_val_accuracy'] = best_accuracy

    def predict(self, batch, **kwargs):
        id_to_label = self.model_entity.id_to_label_map
        x = torch.stack([self.preprocess(image) for image in batch]).to(self.device)
        with torch.no_grad():
            probabilities = torch.softmax(self.model(x), dim=1).cpu().numpy()
        batch_annotations = list()
        for row in probabilities:
            label_id = int(np.argmax(row))
            collection = dl.AnnotationCollection()
            collection.add(annotation_definition=dl.Classification(label=id_to_label[label_id]),
                           model_info={'name': self.model_entity.name,
                                       'model_id': self.model_entity.id,
                                       'confidence': float(row[label_id])})
            batch_annotations.append(collection)
        return batch_annotations

    def embed(self, batch, **kwargs):
        x = torch.stack([self.preprocess(image) for image in batch]).to(self.device)
        with torch.no_grad():
            features = self.model.features(x).cpu().numpy()
        return [vector for vector in features]
