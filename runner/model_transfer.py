"""``python -m runner.store export-model`` / ``import-model``: one trained model version, moved from one
local platform to another (a colleague's laptop, a cluster) as one zip file.

The zip holds ``manifest.json`` (the version's record: name, status, configuration, labels, input and
output type, metadata with its subsets and ``metadata.user.runner``; the name of the dataset it was
trained on; its evaluations and metric samples; each artifact's name, size and SHA-256) and
``artifacts/<name>`` for each artifact file. An import checks the whole file before it stores
anything, then creates the version, its artifacts and its evaluations in one transaction.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .errors import AlreadyExistsError, DataImportError, NotFoundError, RunnerError
from .files import write_whole
from .platform.local.blobs import sha_of_file
from .platform.local.store import now_iso
from .store_lookup import model_named
from .training_claim import process_gone

FORMAT = "adapter-runner-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARTIFACTS = "artifacts/"
# the record's keys that travel; ids (its own, its dataset's, its base model's, its project's) do not
RECORD_KEYS = ("name", "description", "status", "labels", "tags", "configuration", "metadata", "inputType",
               "outputType", "scope", "version")


def export_model(platform, version: str, dest: Path, force: bool = False) -> str:
    """Write ``version`` of ``platform`` to the zip ``dest`` (whole or not at all); returns what was written."""
    model = model_named(platform, version)
    record = platform.store.get_model(model.id)
    stored = platform.store.list_artifacts(model.id)
    if not stored:
        raise RunnerError(f"model {version!r} has no artifacts (status {record.get('status')!r}): an import of it "
                          "would have nothing to evaluate or predict with", where=f"the local platform at {platform.root}",
                          fix="export a trained version (python -m runner.store models lists them, with their status)")
    if record.get("status") == "training" and not process_gone(record):
        raise RunnerError(f"model {version!r} has status 'training': a job may be writing its artifacts now",
                          where=f"the local platform at {platform.root}", fix="wait for its training to end, then export")
    if dest.suffix.lower() != ".zip":
        raise RunnerError(f"{dest.name!r} is not a .zip file name", where=str(dest), fix="name a .zip file")
    if dest.is_dir() or (dest.exists() and not force):
        raise RunnerError(f"{dest} already exists", where=str(dest),
                          fix="name a new file" + ("" if dest.is_dir() else ", or add --force to replace it"))
    datasets = {d.id: d.name for d in platform.list_datasets()}
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "exported": now_iso(),
        "source": {"root": str(platform.root), "model_id": model.id},
        "model": {key: record[key] for key in RECORD_KEYS if key in record},
        "dataset": datasets.get(record.get("datasetId")),
        "evaluations": [{"created": when, "dataset": datasets.get(on), "metrics": metrics}
                        for when, on, metrics in reversed(platform.store.evaluations(model.id))],  # oldest first
        "metric_samples": platform.store.metric_samples(model.id),
        "artifacts": [],
    }
    with tempfile.TemporaryDirectory(prefix="export-model-") as folder:
        platform.download_artifacts(model, folder)  # checks each file is there and whole
        for name, _blob, size in stored:
            manifest["artifacts"].append({"name": name, "size": size, "sha256": sha_of_file(Path(folder) / name)})

        def write(path: Path) -> None:
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(MANIFEST, json.dumps(manifest, indent=2, default=str))
                for artifact in manifest["artifacts"]:
                    archive.write(Path(folder) / artifact["name"], ARTIFACTS + artifact["name"])

        write_whole(dest, write)
    return (f"wrote model {version} ({len(stored)} artifact file(s), {len(manifest['evaluations'])} evaluation(s); "
            f"trained on dataset {manifest['dataset']!r}) to {dest}")


def _not_an_export(source: Path, why: str) -> DataImportError:
    return DataImportError(f"{source} is not a model export of python -m runner.store export-model: {why}",
                           where=str(source), fix="export the version again (python -m runner.store export-model "
                           "<version> <file.zip>) and copy the whole file; nothing was stored")


def read_export(source: Path, folder: Path) -> dict:
    """The manifest of the export ``source``, its artifacts extracted into ``folder`` and checked
    against it (size and SHA-256)."""
    if not source.is_file():
        raise NotFoundError(f"no file {source}", where=str(source), fix="name the .zip that export-model wrote")
    try:
        with zipfile.ZipFile(source) as archive:
            try:
                manifest = json.loads(archive.read(MANIFEST))
            except KeyError:
                raise _not_an_export(source, f"it holds no {MANIFEST}") from None
            except (ValueError, UnicodeDecodeError) as err:
                raise _not_an_export(source, f"its {MANIFEST} is not JSON ({err})") from None
            _check_manifest(source, manifest)
            for artifact in manifest["artifacts"]:
                target = folder / artifact["name"]
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    target.write_bytes(archive.read(ARTIFACTS + artifact["name"]))
                except KeyError:
                    raise _not_an_export(source, f"artifact {artifact['name']!r} is listed but not in it") from None
                if target.stat().st_size != artifact["size"] or sha_of_file(target) != artifact["sha256"]:
                    raise _not_an_export(source, f"artifact {artifact['name']!r} is damaged (its size or SHA-256 "
                                                 "differs from the manifest's)")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:  # not a zip, cut short, a bad CRC
        raise _not_an_export(source, f"it is not a readable zip file ({err})") from None
    return manifest


def _check_manifest(source: Path, manifest) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _not_an_export(source, f"its {MANIFEST} does not say format {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise _not_an_export(source, f"its format version is {manifest.get('format_version')!r}; this runner "
                                     f"reads {FORMAT_VERSION}")
    model, artifacts = manifest.get("model"), manifest.get("artifacts")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not model["name"]:
        raise _not_an_export(source, "its manifest names no model")
    if not isinstance(artifacts, list) or not artifacts:
        raise _not_an_export(source, "its manifest lists no artifact files")
    for artifact in artifacts:
        name = artifact.get("name") if isinstance(artifact, dict) else None
        if (not isinstance(name, str) or not name or PurePosixPath(name).is_absolute()
                or ".." in PurePosixPath(name).parts or not isinstance(artifact.get("size"), int)
                or not isinstance(artifact.get("sha256"), str)):
            raise _not_an_export(source, f"its manifest lists an artifact it cannot hold: {artifact!r}")


def import_model(platform, source: Path, dataset_name: str | None = None, name: str | None = None) -> str:
    """Create the version exported to ``source`` in ``platform``, tied to the dataset ``dataset_name``
    (default: the one of the name it was trained on), as ``name`` (default: its own); returns what was
    done. Nothing is stored unless all of it is."""
    with tempfile.TemporaryDirectory(prefix="import-model-") as folder:
        manifest = read_export(source, Path(folder))
        exported = manifest["model"]
        name = name or exported["name"]
        dataset = _dataset_for(platform, manifest, dataset_name, source)
        _refuse_taken(platform, name, source)
        record = {key: exported[key] for key in RECORD_KEYS if key in exported}
        record.update(name=name, datasetId=dataset.id, context={"project": platform.project.id}, moduleName=None)
        metadata = record.setdefault("metadata", {})
        runner = metadata.setdefault("user", {}).setdefault("runner", {})
        runner["imported"] = {"file": str(source.resolve()), "name": exported["name"], **manifest.get("source", {}),
                              "exported": manifest.get("exported"), "imported": now_iso()}
        datasets = {d.name: d.id for d in platform.list_datasets()}
        with platform.store.write():  # one transaction: the record, its artifacts and evaluations, or nothing
            try:
                created = platform.store.create_model(record)
            except AlreadyExistsError:  # another job took the name since the check
                _refuse_taken(platform, name, source)
                raise
            model = platform.model_entity(created)
            platform.add_artifacts(model, {a["name"]: str(Path(folder) / a["name"]) for a in manifest["artifacts"]},
                                   replace=True)
            for evaluation in manifest.get("evaluations") or []:
                platform.store.add_evaluation(model.id, datasets.get(evaluation.get("dataset")), evaluation["metrics"])
            if manifest.get("metric_samples"):
                platform.store.add_metric_samples(model.id, dataset.id, manifest["metric_samples"])
    return (f"imported model {name} ({len(manifest['artifacts'])} artifact file(s), "
            f"{len(manifest.get('evaluations') or [])} evaluation(s)) on dataset {dataset.name!r} from {source}; "
            f"python -m runner pipeline=evaluate model.name={name} dataset.name={dataset.name} evaluates it here")


def _dataset_for(platform, manifest: dict, dataset_name: str | None, source: Path):
    wanted = dataset_name or manifest.get("dataset")
    names = [d.name for d in platform.list_datasets()]
    found = platform.find_dataset(wanted) if wanted else None
    if found is not None:
        return found
    trained_on = f"it was trained on dataset {manifest.get('dataset')!r}"
    what = (f"no dataset named {dataset_name!r} in the local platform at {platform.root}" if dataset_name else
            f"{trained_on}, and the local platform at {platform.root} has no dataset of that name")
    raise NotFoundError(f"model {manifest['model']['name']!r} cannot be imported: {what}; nothing was stored",
                        where=f"--dataset {dataset_name}" if dataset_name else str(source),
                        fix=("--dataset <name> ties it to one of this store's datasets: "
                             f"{', '.join(names) or 'none (import one first: python -m runner imports digits)'}"
                             + (f"; or import {manifest.get('dataset')!r} here first" if not dataset_name else "")))


def _refuse_taken(platform, name: str, source: Path) -> None:
    if platform.find_model(name) is not None:
        raise AlreadyExistsError(f"a model named {name!r} already exists in the local platform at {platform.root}; "
                                 "nothing was stored", where=str(source),
                                 fix="add --name <new name> to import it under another name (or delete that model "
                                     f"first: python -m runner.store delete-model {name})")
