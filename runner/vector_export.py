"""``python -m runner.store vectors``: a version's feature vectors (``pipeline=embed``) in a file other
tools read: NumPy's ``.npz`` (arrays ``item_ids``, ``datasets``, ``filenames``, ``vectors``) or a CSV
with a row per item (``item_id,dataset,filename,v0,v1,...``), written whole or not at all."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .errors import RunnerError
from .files import write_whole
from .store_lookup import dataset_named, model_named, refuse_existing_file

FORMATS = (".npz", ".csv")


def export_vectors(platform, version: str, dest: Path, dataset_name: str | None = None) -> str:
    """Write the vectors of ``version`` (of the items of ``dataset_name`` only, if given) to ``dest``;
    returns what was written."""
    model = model_named(platform, version)
    if dest.suffix.lower() not in FORMATS:
        raise RunnerError(f"{dest.name!r} is not a file type vectors are written as", where=str(dest),
                          fix="name a .npz file (NumPy arrays) or a .csv file (a row per item)")
    refuse_existing_file(dest)
    dataset = None if dataset_name is None else dataset_named(platform, dataset_name, where="--dataset")
    sets = platform.store.find_feature_sets(platform.project.id, model_id=model.id)
    ids, matrix = platform.feature_vectors(sets[0]["id"], None, dataset) if sets else ([], None)
    if not ids:
        where = f" of dataset {dataset.name!r}" if dataset is not None else ""
        other = "" if dataset is None or dataset.id == model.dataset_id else \
            f" dataset.name={dataset.name} dataset.source=null"
        raise RunnerError(f"model version {version!r} holds no feature vectors{where}",
                          fix=f"python -m runner pipeline=embed model.name={version}{other} stores them (with an "
                              "adapter that defines embed)")
    places = platform.store.item_places(ids)
    datasets, filenames = ([places[i][k] for i in ids] for k in (0, 1))
    if dest.suffix.lower() == ".npz":
        def write(path: Path) -> None:
            with open(path, "wb") as out:  # a file object: np.savez would add .npz to a name
                np.savez(out, item_ids=np.array(ids), datasets=np.array(datasets), filenames=np.array(filenames),
                         vectors=matrix)
    else:
        def write(path: Path) -> None:
            with open(path, "w", newline="", encoding="utf-8") as out:
                rows = csv.writer(out)
                rows.writerow(["item_id", "dataset", "filename", *(f"v{j}" for j in range(matrix.shape[1]))])
                for i, row in enumerate(matrix):
                    rows.writerow([ids[i], datasets[i], filenames[i], *(format(float(v), ".9g") for v in row)])
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_whole(dest, write)
    return (f"wrote {len(ids)} vectors of {matrix.shape[1]} values (model version {version}, "
            f"{'dataset ' + repr(dataset.name) if dataset is not None else 'every dataset it embedded'}) to {dest}")
