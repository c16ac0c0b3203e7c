"""A bag-of-words text classifier (scikit-learn), written as public Dataloop adapters are.

Words are hashed into ``n_features`` buckets (``HashingVectorizer``: no vocabulary to keep), weighted
by tf-idf and classified by a linear model trained with SGD (log loss), one ``partial_fit`` pass per
epoch; the epoch with the best validation accuracy is kept. ``predict`` marks the whole text with
the predicted label (``dl.Text``); ``embed`` returns the tf-idf vector (``n_features`` values).

Configuration: ``n_features`` (256), ``num_epochs`` (20), ``alpha`` (1e-4), ``seed`` (0),
``weights_filename`` (``text_model.npz``). ``train`` sets ``embeddings_size``, ``best_epoch``,
``best_val_accuracy``, ``weights_filename`` and the model's label maps.
"""

import json
import logging
import os

import dtlpy as dl
import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss
from sklearn.preprocessing import normalize

logger = logging.getLogger('text-classifier-adapter')


class TextClassifier(dl.BaseModelAdapter):
    def load(self, local_path, **kwargs):
        n_features = self.configuration.get('n_features', 256)
        self.vectorizer = HashingVectorizer(n_features=n_features, alternate_sign=False, norm=None)
        weights_filename = self.configuration.get('weights_filename', 'text_model.npz')
        path = os.path.join(local_path, weights_filename)
        self.model = None
        if os.path.isfile(path):
            with np.load(path, allow_pickle=False) as weights:
                self.model = {key: weights[key] for key in ('coef', 'intercept', 'idf', 'classes')}
            logger.info(f'loaded weights from {path}')

    def save(self, local_path, **kwargs):
        weights_filename = self.configuration.get('weights_filename', 'text_model.npz')
        np.savez(os.path.join(local_path, weights_filename), **self.model)
        self.configuration['weights_filename'] = weights_filename

    def convert_from_dtlpy(self, data_path, **kwargs):
        """(item id, label) per subset, from the Dataloop json files prepare_data wrote."""
        self.samples = dict()
        for subset in sorted(os.listdir(data_path)):
            rows = list()
            for root, _dirs, files in os.walk(os.path.join(data_path, subset, 'json')):
                for filename in sorted(files):
                    with open(os.path.join(root, filename)) as f:
                        item_json = json.load(f)
                    marks = [a['label'] for a in item_json.get('annotations', []) if a['type'] == 'text_mark']
                    if marks:
                        rows.append((item_json['id'], marks[0]))
            self.samples[subset] = rows

    # -- features --------------------------------------------------------------------------------

    def tfidf(self, texts, idf=None):
        counts = self.vectorizer.transform(texts)
        idf = self.model['idf'] if idf is None else idf
        return normalize(counts.multiply(idf[None, :]).tocsr(), norm='l2')

    @staticmethod
    def probabilities(features, coef, intercept):
        """As SGDClassifier(loss='log_loss').predict_proba: one-vs-rest sigmoids, normalised."""
        scores = np.asarray(features @ coef.T) + intercept
        if coef.shape[0] == 1:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        probabilities = 1.0 / (1.0 + np.exp(-scores))
        total = probabilities.sum(axis=1, keepdims=True)
        return np.where(total > 0, probabilities / np.where(total > 0, total, 1.0), 1.0 / coef.shape[0])

    # -- training --------------------------------------------------------------------------------

    def download_texts(self, rows):
        dataset = self.model_entity.dataset
        texts = list()
        for item_id, _label in rows:
            buffer = dataset.items.get(item_id=item_id).download(save_locally=False)
            texts.append(buffer.read().decode('utf-8'))
        return texts

    def train(self, data_path, output_path, **kwargs):
        num_epochs = self.configuration.get('num_epochs', 20)
        alpha = self.configuration.get('alpha', 1e-4)
        seed = self.configuration.get('seed', 0)
        on_epoch_end_callback = kwargs.get('on_epoch_end_callback')
        label_to_id = self.model_entity.label_to_id_map

        train_rows = self.samples.get('train') or list()
        if not train_rows:
            raise ValueError(f'no text_mark annotations in the train subset at {data_path}')
        val_rows = self.samples.get('validation') or train_rows
        train_texts, val_texts = self.download_texts(train_rows), self.download_texts(val_rows)
        y_train = np.asarray([label_to_id[label] for _id, label in train_rows])
        y_val = np.asarray([label_to_id[label] for _id, label in val_rows])
        classes = np.asarray(sorted(label_to_id.values()))

        idf = TfidfTransformer().fit(self.vectorizer.transform(train_texts)).idf_
        x_train, x_val = self.tfidf(train_texts, idf), self.tfidf(val_texts, idf)
        classifier = SGDClassifier(loss='log_loss', alpha=alpha, random_state=seed)
        rng = np.random.default_rng(seed)
        best_accuracy, best_epoch = -1.0, -1
        for epoch in range(num_epochs):
            order = rng.permutation(len(y_train))
            classifier.partial_fit(x_train[order], y_train[order], classes=classes)
            train_loss = log_loss(y_train, classifier.predict_proba(x_train), labels=classes)
            val_accuracy = float((classifier.predict(x_val) == y_val).mean())
            self.model_entity.metrics.create(
                samples=[dl.PlotSample(figure='log loss', legend='train', x=epoch, y=float(train_loss)),
                         dl.PlotSample(figure='accuracy', legend='val', x=epoch, y=val_accuracy)],
                dataset_id=self.model_entity.dataset_id)
            if val_accuracy > best_accuracy:
                best_accuracy, best_epoch = val_accuracy, epoch
                self.model = {'coef': classifier.coef_.copy(), 'intercept': classifier.intercept_.copy(),
                              'idf': idf, 'classes': classifier.classes_.copy()}
            if on_epoch_end_callback is not None:
                on_epoch_end_callback(i_epoch=epoch, n_epoch=num_epochs)
        logger.info(f'best epoch {best_epoch}: val accuracy {best_accuracy:.4f}')
        self.configuration['embeddings_size'] = self.configuration.get('n_features', 256)
        self.configuration['best_epoch'] = best_epoch
        self.configuration['best_val_accuracy'] = best_accuracy

    # -- inference -------------------------------------------------------------------------------

    def predict(self, batch, **kwargs):
        id_to_label = self.model_entity.id_to_label_map
        probabilities = self.probabilities(self.tfidf(batch), self.model['coef'], self.model['intercept'])
        batch_annotations = list()
        for text, row in zip(batch, probabilities, strict=True):
            best = int(np.argmax(row))
            label = id_to_label[int(self.model['classes'][best])]
            collection = dl.AnnotationCollection()
            collection.add(annotation_definition=dl.Text(text_type='block', start=0, end=len(text), label=label),
                           model_info={'name': self.model_entity.name,
                                       'model_id': self.model_entity.id,
                                       'confidence': float(row[best])})
            batch_annotations.append(collection)
        return batch_annotations

    def embed(self, batch, **kwargs):
        features = self.tfidf(batch).toarray().astype(np.float32)
        return [row for row in features]
