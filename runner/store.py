"""``python -m runner.store``: what the local platform holds, and deleting what is no longer needed.

    python -m runner.store datasets                         # items, annotations, predictions, models
    python -m runner.store models --dataset digits          # versions, status, their latest metrics
    python -m runner.store show <version>                   # one version: configuration, artifacts, evaluation
    python -m runner.store compare <version> <version>...   # side by side: metrics, settings that differ
    python -m runner.store delete-model 'sklearn-digits-2026*' --status failed
    python -m runner.store delete-dataset shapes --with-models
    python -m runner.store export digits digits-export/ --model <version> --dir /test
    python -m runner.store export new predictions.csv --model <version> --no-ground-truth
    python -m runner.store export-model <version> model.zip    # one version, to import into another store
    python -m runner.store import-model model.zip --dataset digits
    python -m runner.store vectors <version> vectors.npz    # the feature vectors of pipeline=embed (.npz or .csv)
    python -m runner.store studies                          # the Optuna studies, the version of each one's best
    python -m runner.store delete-study digits_sklearn_validation
    python -m runner.store settle-study digits_sklearn_validation --sweep multirun/2026-11-25/10-31-40
    python -m runner.store check --clean
    python -m runner.store check --restore
    python -m runner.store check --clean-model-data --compact

A delete is one transaction: the records go, and file bytes no other record uses are removed with
them; a failure stores nothing half-way. It asks before deleting (``--yes`` does not). An export
writes a Dataloop export folder (``items/`` + ``json/``), or one CSV or COCO file, whole or not at all. A check finds records
whose file bytes are gone and bytes no record uses (``--clean`` removes those), and says what the
store and the copies beside it take on disk (``--compact`` gives the database's free pages back).
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .paths import dataloop_path_problem, holds_store

# before anything imports dtlpy, which writes there as it is imported
if __name__ == "__main__" and (_problem := dataloop_path_problem()):
    print(f"error: {_problem}", file=sys.stderr)
    raise SystemExit(2)

# Only light modules here: dtlpy, scikit-learn, pandas and Hydra take seconds to import, so each command
# imports what it needs where it runs, and --help or a mistyped argument answers at once.
from .configuration import is_number  # noqa: E402
from .confirm import confirm  # noqa: E402
from .errors import NotFoundError, RunnerError  # noqa: E402
from .processes import process_runs  # noqa: E402
from .store_check import check, no_copies_of_its_own  # noqa: E402
from .store_lookup import dataset_named, meant_models, model_named, refuse_existing_file  # noqa: E402
from .text_table import aligned, closest, did_you_mean, first_few, is_pattern, number_cell  # noqa: E402

# a version a job may be using right now: deleting it would fail that job
IN_USE = ("training",)
STATUSES = ("created", "training", "trained", "failed")  # a local model's statuses
LISTINGS = ("datasets", "models", "show", "compare", "studies")  # the commands whose output --json changes
FORMATS = ("dataloop", "csv", "coco")  # of an export: a Dataloop export folder, or one file
SUFFIXES = {".csv": "csv", ".json": "coco"}  # the format a file name implies when --format is not given


def _platform(args):
    """The platform at ``--root``; one that is not there is an error (opening it would create it)."""
    from .paths import default_local_root
    from .platform.local import LocalPlatform
    from .platform.local.platform import DEFAULT_PROJECT

    given = getattr(args, "root", None)
    if given is not None and not given.strip():
        raise RunnerError("--root is empty", where="--root ''", fix="name the platform's folder, or leave --root out "
                          f"for the default ({default_local_root()})")
    root = Path(given) if given else default_local_root()
    if not holds_store(root):
        raise NotFoundError(f"no local platform at {root} (no platform.db there)", where="--root" if given else
                            "$DATALOOP_PATH/local", fix="pass --root <the folder a run's platform.root names>, or make "
                            "one with a first run (python -m runner)")
    return LocalPlatform(root, project=getattr(args, "project", DEFAULT_PROJECT), create_project=False)


def _source(source: dict | None) -> str:
    if not source:
        return ""
    target = str(source.get("_target_", "")).rsplit(".", 1)[-1]
    return " ".join([target, *(f"{k}={v}" for k, v in sorted(source.items()) if k != "_target_")]).strip()


def _scalars(evaluation: dict | None) -> dict[str, float]:
    """Every number of an evaluation, in its order (``per_label``, the confusion matrix are not one);
    finite ones only: JSON has no NaN, and a NaN would not sort."""
    return {name: value for name, value in (evaluation or {}).items() if is_number(value, finite=True)}


def _shown(metrics: dict[str, float], sort: str | None) -> dict[str, float]:
    """The table's few of them (the JSON has them all): the one it is sorted by, then the first
    preferred ones, as a sweep's table shows them."""
    from .sweep_table import PREFERRED, SHOWN_METRICS

    shown = [name for name in PREFERRED if name in metrics][:SHOWN_METRICS]
    if sort in metrics and sort not in shown:
        shown.insert(0, sort)
    return {name: metrics[name] for name in shown}


def datasets(platform) -> list[dict]:
    counts = platform.store.dataset_counts(platform.project.id)
    return [{"name": d.name, "id": d.id, **counts.get(d.id, {}), "source": platform.import_source(d),
             "created": d.created_at} for d in platform.list_datasets()]


def models(platform, dataset: str | None = None, status: str | None = None, pattern: str = "*") -> list[dict]:
    """The models (store JSON) whose name matches ``pattern``, optionally of one dataset and status,
    oldest first."""
    dataset_id = platform.get_dataset(name=dataset).id if dataset else None
    return [m for m in platform.store.list_models(platform.project.id) if fnmatch.fnmatchcase(m["name"], pattern)
            and (dataset_id is None or m.get("datasetId") == dataset_id) and (status is None or m["status"] == status)]


def model_rows(platform, found: list[dict], sort: str | None = None, subset: str | None = None) -> list[dict]:
    """One row per model; with ``sort`` (a metric's name) best first by its latest evaluation, the
    models without that metric last. With ``subset``: each one's latest evaluation on that subset of
    its own (none when it has none there)."""
    from .model_details import cloned_from
    from .reporting import runner_metadata
    from .training_claim import process_gone

    _evaluated_subset(platform, subset)
    datasets_by_id = {d.id: d.name for d in platform.list_datasets()}
    names = {m["id"]: m["name"] for m in platform.store.list_models(platform.project.id)}
    rows = []
    for m in found:
        evaluation, evaluated_on = platform.store.latest_evaluation_on(m["id"], subset) or (None, None)
        rows.append({"name": m["name"], "id": m["id"], "status": m["status"], "process_gone": process_gone(m),
                     "dataset": datasets_by_id.get(m.get("datasetId"), m.get("datasetId")),
                     "cloned_from": cloned_from(m.get("clonedFrom"), names), "created": m.get("createdAt"),
                     "run": runner_metadata(m).get("run"),
                     "metrics": _scalars(evaluation),
                     "evaluated_on": None if evaluation is None else {
                         "dataset": datasets_by_id.get(evaluated_on, evaluated_on), "subset": evaluation.get("subset"),
                         "items": evaluation.get("n_items"), "with": evaluation.get("configuration_changes")}})
    return rows if sort is None else _sorted(rows, sort, subset)  # --sort '' too: refused, as a typo


def _evaluated_subset(platform, subset: str | None) -> str | None:
    """``--evaluated-on``'s subset. One no evaluation in the store was taken on is most likely a typo:
    refused, with the closest."""
    scored = platform.store.evaluated_subsets() if subset is not None else []
    if subset is not None and subset not in scored:
        raise NotFoundError(f"no evaluation in the store was taken on a subset named {subset!r}"
                            + did_you_mean(subset, scored), where=f"--evaluated-on {subset}",
                            fix=f"evaluations here were taken on: {', '.join(scored) or 'no named subset'}")
    return subset


def _sorted(rows: list[dict], sort: str, subset: str | None = None) -> list[dict]:
    """Best first by ``sort``, those without it last. A metric none of them has is refused: the
    listing unsorted would hide the typo."""
    from .model_compare import lower_is_better

    scored = [r for r in rows if sort in r["metrics"]]
    if rows and not scored:
        raise _unknown_metric(sort, rows, subset)
    scored.sort(key=lambda r: r["metrics"][sort], reverse=not lower_is_better(sort))
    return scored + [r for r in rows if sort not in r["metrics"]]


def _unknown_metric(sort: str, rows: list[dict], subset: str | None = None) -> RunnerError:
    have = list(dict.fromkeys(name for r in rows for name in r["metrics"]))
    if not have and subset:
        return RunnerError(f"no listed model has a metric {sort!r}: none of them has been evaluated on a subset "
                           f"named {subset!r}", where=f"--evaluated-on {subset}",
                           fix="name a subset they were evaluated on (the listing without --evaluated-on shows "
                               "where), or evaluate them there (python -m runner pipeline=evaluate "
                               f"model.name=<version> pipeline.evaluate_subset={subset})")
    if not have:
        return RunnerError(f"no listed model has a metric {sort!r}: none of them has been evaluated",
                           where=f"--sort {sort}", fix="leave --sort out, or evaluate a version first "
                           "(python -m runner pipeline=evaluate model.name=<version>)")
    close = closest(sort, have) or next((name for name in have if name.startswith(sort)), None)  # f1: f1_macro
    return RunnerError(f"no listed model has a metric {sort!r} in its latest evaluation"
                       + (f" (did you mean {close}?)" if close else ""), where=f"--sort {sort}",
                       fix=f"sort by one they have: {', '.join(have)}")


def _print_datasets(rows: list[dict], platform, args) -> None:
    from .model_details import day

    print(f"local platform: {platform.root}")
    if not rows:
        print("no datasets (a run imports its dataset.source, or see README: Importers)")
        return
    header = ["dataset", "items", "annotations", "predictions", "its models", "created", "imported with"]
    print("\n".join(aligned(header, [[r["name"], str(r["items"]), str(r["annotations"]), str(r["predictions"]),
                                      str(r["models"]), day(r["created"]), _source(r["source"])] for r in rows])))


def _print_models(rows: list[dict], platform, args) -> None:
    from .model_details import day

    print(f"local platform: {platform.root}")
    if not rows:
        print(_none_listed(platform, args))
        return
    latest = "latest evaluation" + (f" on {args.evaluated_on}" if args.evaluated_on else "")
    header = ["model", "status", "dataset", "cloned from", "created", latest, "evaluated on"]
    print("\n".join(aligned(header, [[r["name"], r["status"] + (" (process gone)" if r["process_gone"] else ""),
                                      r["dataset"] or "", r["cloned_from"] or "",
                                      day(r["created"]), _metrics_cell(r["metrics"], args.sort),
                                      _evaluated_on(r["evaluated_on"])] for r in rows])))
    ranked = {_evaluated_on(r["evaluated_on"]) for r in rows if args.sort in r["metrics"]}
    if args.sort and len(ranked) > 1:
        print(f"note: this ranking mixes scores taken on different data or settings ({'; '.join(sorted(ranked))}): "
              + (f"the versions' own {args.evaluated_on} subsets differ (random splits of other seeds, or other "
                 "datasets), so these scores do not rank them alike" if args.evaluated_on else
                 "--evaluated-on test ranks each version by its latest evaluation on its own test subset"))


def _metrics_cell(metrics: dict[str, float], sort: str | None) -> str:
    # a sweep table's number format (n_items=269, accuracy=0.9628), so the two tables agree
    return " ".join(f"{name}={number_cell(value)}" for name, value in _shown(metrics, sort).items())


def _none_listed(platform, args) -> str:
    """Why the listing is empty, from the models that --dataset leaves: the whole store's statuses
    would name ones that dataset's models do not have."""
    of = f" of dataset {args.dataset!r}" if args.dataset else ""
    left = models(platform, args.dataset)
    if not left:  # then --status did not empty it
        return f"no models{of}" if of else "no models (a run trains one: python -m runner)"
    statuses = _statuses(left, "their statuses" if of else "statuses here")
    return f"no models{of} with status {args.status!r} ({statuses})"


def _evaluated_on(where: dict | None) -> str:
    from .model_details import scored_on

    return scored_on(where["dataset"], where.get("subset"), where.get("items"), where.get("with")) if where else ""


def _names(items: Sequence, shown: int = 10) -> str:
    return first_few([item.name for item in items], shown)


def _refuse_in_use(models: Sequence, force: bool) -> None:
    from .training_claim import process_gone

    busy = [m for m in models if m.status in IN_USE and not process_gone(m)]
    if busy and not force:
        raise RunnerError(f"{_names(busy)}: status {busy[0].status!r}, so a job may be using it now",
                          fix="wait for the job to end; if it is gone (killed), add --force")


def _statuses(found: list[dict], label: str = "statuses here") -> str:
    return f"{label}: {', '.join(sorted({m['status'] for m in found})) or 'none (no models)'}"


def delete_models(platform, args) -> int:
    found: dict[str, dict] = {}
    for name in args.names:
        matched = models(platform, status=args.status, pattern=name)
        if not matched and not is_pattern(name):  # a name, not a pattern: most likely a typo
            every = models(platform)
            meant = meant_models(name, [m["name"] for m in every])
            raise NotFoundError(f"no model named {name!r}" + (f" with status {args.status!r}" if args.status else "")
                                + meant, where=f"the local platform at {platform.root}", fix="nothing was deleted; "
                                f"python -m runner.store models lists the models ({_statuses(every)})"
                                + ("" if meant else f"; a pattern such as '{name}*' names every model whose name "
                                   "starts so"))
        found.update((m["id"], m) for m in matched)
    if not found:
        print(f"no model matches {' '.join(args.names)}" + (f" with status {args.status!r}" if args.status else "")
              + f" in the local platform at {platform.root}: nothing to delete")
        return 0
    chosen = [platform.model_entity(m) for m in found.values()]
    _refuse_in_use(chosen, args.force)
    what = "with their artifacts, metrics" + ("" if args.keep_predictions else " and predictions")
    clones = [m["name"] for m in models(platform) if m.get("clonedFrom") in found and m["id"] not in found]
    # a version trained on from one of them: it keeps working, but its listing loses where it came from
    lineage = (f"; {len(clones)} version(s) cloned from them stay, listed as cloned from a deleted model: "
               f"{first_few(clones, 10)}") if clones else ""
    if not confirm(f"delete {len(chosen)} model(s) {what} from the local platform at {platform.root}: "
                   f"{_names(chosen)}{lineage}?", args.yes):
        return 1
    platform.delete_models(chosen, predictions=not args.keep_predictions)
    print(f"deleted {len(chosen)} model(s) from the local platform at {platform.root}: {_names(chosen)}{lineage}"
          + _copies_left(platform))
    return 0


def delete_dataset(platform, args) -> int:
    dataset = dataset_named(platform, args.name, nothing_done="nothing was deleted; ")
    counts = platform.store.dataset_counts(platform.project.id)[dataset.id]
    owned = platform.models_of(dataset)
    if owned and not args.with_models:
        raise RunnerError(f"dataset {dataset.name!r} is the dataset of {len(owned)} model(s): {_names(owned)}",
                          where=f"the local platform at {platform.root}",
                          fix="nothing was deleted; add --with-models to delete them with it")
    _refuse_in_use(owned, args.force)
    extra = f" and its {len(owned)} model(s)" if owned else ""
    held = (f"{counts['items']} items, {counts['annotations']} annotations, {counts['predictions']} predictions")
    if not confirm(f"delete dataset {dataset.name!r} ({held}){extra} from the local platform at "
                   f"{platform.root}?", args.yes):
        return 1
    deleted = platform.delete_dataset(dataset, with_models=args.with_models)
    print(f"deleted dataset {dataset.name!r} from the local platform at {platform.root}: {held}"
          + (f", {len(deleted)} model(s): {_names(deleted)}{_copies_left(platform)}" if deleted else ""))
    return 0


def _copies_left(platform) -> str:
    """What a delete left of the models' local copies: those beside a store of its own go with it; a
    store without such folders leaves them, and says so."""
    if platform.copies_home is not None:
        return ""
    return f"; their local copies (models/, model_data/) were left: {no_copies_of_its_own(platform)}"


def _annotation_filter(model: str | None, ground_truth: bool, predictions: bool = True,
                       types: list[str] | None = None) -> dict | None:
    """Annotation DQL for an export: ground truth and/or predictions (all models', or one model's),
    of some annotation types or all; None for every annotation."""
    truth = {"metadata.system.model.name": {"$exists": False}}
    made = {"metadata.system.model.name": model} if model else {"metadata.system.model.name": {"$exists": True}}
    kept = [clause for clause, wanted in ((truth, ground_truth), (made, predictions)) if wanted]
    by_source = None if ground_truth and predictions and model is None else kept[0] if len(kept) == 1 else {"$or": kept}
    parts = [p for p in (by_source, {"type": {"$in": types}} if types else None) if p]
    if not parts:
        return None
    return {"resource": "annotations", "filter": parts[0] if len(parts) == 1 else {"$and": parts}}


def _types(given: list[str] | None) -> list[str] | None:
    """``--type box --type segment`` or ``--type box,segment``; a type no annotation can have is refused."""
    from .platform.annotation_json import ANNOTATION_TYPES

    if not given:
        return None
    types = [t.strip() for value in given for t in value.split(",") if t.strip()]
    unknown = [t for t in types if t not in ANNOTATION_TYPES]
    if unknown:
        raise RunnerError(f"--type {unknown[0]!r} is not an annotation type{did_you_mean(unknown[0], ANNOTATION_TYPES)}",
                          where="--type", fix=f"one of: {', '.join(ANNOTATION_TYPES)}")
    return types


def _item_filter(args) -> dict | None:
    clauses, join = [], None
    if args.filter:
        try:
            given = json.loads(args.filter)
        except json.JSONDecodeError as err:
            raise RunnerError(f"--filter is not JSON: {err}", where=f"--filter {args.filter}",
                              fix='pass DQL JSON, e.g. --filter \'{"metadata.user.tags": "hard"}\'') from err
        if not isinstance(given, dict):
            raise RunnerError("--filter must be a JSON object (DQL)", where=f"--filter {args.filter}",
                              fix='pass DQL JSON, e.g. --filter \'{"metadata.user.tags": "hard"}\'')
        prepared = "resource" in given or "filter" in given or "join" in given  # dl.Filters().prepare()'s form
        clauses.append(given.get("filter") or {} if prepared else given)
        join = given.get("join") if prepared else None  # an annotation join: kept, the DQL checks it
    if args.dir:
        folder = "/" + args.dir.strip("/")
        clauses.append({"$or": [{"dir": folder}, {"dir": folder.rstrip("/") + "/*"}]} if folder != "/" else {})
    clauses = [c for c in clauses if c]
    if not clauses and join is None:
        return None
    dql = {"resource": "items", "filter": {} if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}}
    return dql if join is None else {**dql, "join": join}


# suffixes of files an export does not write: a DEST so named is most likely a file meant in another format
_FILE_SUFFIXES = (".txt", ".tsv", ".xlsx", ".xls", ".jsonl", ".ndjson", ".parquet", ".npz", ".zip", ".tar", ".gz",
                  ".yaml", ".yml", ".xml")


def export(platform, args) -> int:
    """A dataset's items and annotations: a Dataloop export folder, or one CSV or COCO file. Each is
    written beside ``dest`` first and renamed into place: a failed export leaves nothing behind."""
    dataset = dataset_named(platform, args.dataset)
    if args.model:
        model_named(platform, args.model, where="--model")
    dest = Path(args.dest)
    fmt = args.format or SUFFIXES.get(dest.suffix.lower(), "dataloop")
    if not args.format and dest.suffix.lower() in _FILE_SUFFIXES:  # a file meant, of no format an export writes
        raise RunnerError(f"{dest.name} ends in {dest.suffix}, a file's suffix, but an export writes a CSV (.csv), a "
                          "COCO file (.json) or a Dataloop export folder (no suffix)", where=str(dest),
                          fix=f"name it {dest.stem}.csv or {dest.stem}.json, or a folder; --format dataloop writes a "
                              "folder of that very name")
    if fmt == "dataloop" and dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise RunnerError(f"{dest} already exists and is not an empty folder", where=str(dest),
                          fix="name a new folder: an export never writes over files")
    if fmt != "dataloop":
        refuse_existing_file(dest)
    if args.polygons_as_rle and fmt != "coco":
        raise RunnerError(f"--polygons-as-rle is a COCO file's option, and this export writes {fmt}",
                          where="--polygons-as-rle", fix="name a .json file (or --format coco), or leave it out")
    if args.no_ground_truth and args.no_predictions:
        raise RunnerError("--no-ground-truth and --no-predictions leave no annotation to export",
                          where="--no-ground-truth --no-predictions", fix="give one of them, or neither")
    if args.model and args.no_predictions:
        raise RunnerError(f"--model {args.model} keeps that version's predictions, which --no-predictions leaves out",
                          where="--model --no-predictions", fix="give one of them")
    items = _item_filter(args)
    annotations = _annotation_filter(args.model, ground_truth=not args.no_ground_truth,
                                     predictions=not args.no_predictions, types=_types(args.type))
    made = next((d for d in reversed([dest.parent, *dest.parent.parents]) if not d.exists()), None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for left in dest.parent.glob(f".{glob.escape(dest.name)}.partial-*"):  # of an export killed outright
        pid = left.name.rpartition("-")[2]
        if pid.isdigit() and not process_runs(int(pid)):
            shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(missing_ok=True)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    done = False
    try:
        if fmt == "dataloop":
            count = platform.export(dataset, items, annotations, partial)
            truth, predictions = _annotation_counts(
                json.loads(p.read_text()) for p in (partial / "json").rglob("*.json"))
            layout = "items/ + json/: Dataloop's export layout, which dataset=dataloop_export imports"
        else:
            exported = [item for item, _blob in platform.items_with_annotations(dataset, items, annotations)]
            count = len(exported)
            truth, predictions = _annotation_counts(exported)
            if fmt == "coco" and truth and predictions:
                raise RunnerError(f"COCO keeps ground truth and detections in separate files (COCOeval reads a "
                                  f"ground-truth file and a results file); this export holds {truth} ground-truth "
                                  f"annotations and {predictions} predictions", where="--format coco",
                                  fix="export the ground truth with --no-predictions, and the predictions to another "
                                      "file with --no-ground-truth (--model <version> for one version's)")
            layout = _write_file(fmt, exported, dataset, partial, platform.find_model(args.model) if args.model else None,
                                 rle=args.polygons_as_rle)
        if count == 0:
            raise RunnerError(f"no item of dataset {dataset.name!r} matches", where=_where(args),
                              fix="check --dir/--filter; python -m runner.store datasets shows the datasets")
        if dest.is_dir():
            dest.rmdir()  # empty, checked above
        partial.rename(dest)
        done = True
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
        if not done and made is not None:  # the folders made for it
            shutil.rmtree(made, ignore_errors=True)
    kept = " and ".join(([] if args.no_ground_truth else ["ground truth"]) + (
        [] if args.no_predictions else [f"the predictions of {args.model}" if args.model else
                                        "the predictions of every model"])) + (
        f", of type {', '.join(_types(args.type))}" if args.type else "")
    print(f"exported {count} items of dataset {dataset.name!r}, with {kept} ({truth} ground-truth annotations, "
          f"{predictions} predictions), to {dest} ({layout})")
    if args.model and predictions == 0 and not args.no_predictions:
        own = platform.find_model(args.model).dataset_id == dataset.id  # else: this dataset, every item of it
        print(f"note: {args.model} has no predictions on these items (python -m runner pipeline=predict "
              f"model.name={args.model}" + ("" if own else f" dataset.name={dataset.name} dataset.source=null "
                                                            "pipeline.predict_subset=null") + " stores some)")
    return 0


def _write_file(fmt: str, exported: list[dict], dataset, path: Path, model=None, rle: bool = False) -> str:
    """Write the CSV or COCO file; say what it holds (and, for COCO, what it left out). COCO's
    category ids number the dataset's labels, so a ground-truth file and a results file of it agree;
    then, on a dataset without labels (new images), those of the version whose predictions go out."""
    from .export_formats import coco_json, csv_text

    if fmt == "csv":
        path.write_text(csv_text(exported))
        return "CSV: a row per annotation, and one per item without any"
    labels = [label.tag for label in dataset.labels] + (list(model.labels or []) if model is not None else [])
    document, written, left_out = coco_json(exported, labels, polygons_as_rle=rle)
    omitted = ", ".join(f"{n} of type {kind}" for kind, n in sorted(left_out.items()))
    if left_out and not written:
        raise RunnerError(f"none of these annotations has a COCO instance form: {omitted} (COCO holds boxes, "
                          "polygons and masks)", where=f"--format coco, dataset {dataset.name!r}",
                          fix="use --format csv (a row per annotation) or --format dataloop")
    path.write_text(json.dumps(document))
    return "COCO instances JSON" + (f"; left out, having no COCO form: {omitted}" if omitted else "")


def _annotation_counts(items: Iterable[dict]) -> tuple[int, int]:
    """(ground-truth annotations, predictions) of exported item JSON."""
    from .platform.annotation_json import model_stamp

    truth = predictions = 0
    for item in items:
        for annotation in item.get("annotations") or []:
            stamp = model_stamp(annotation)
            predictions += bool(stamp)
            truth += not stamp
    return truth, predictions


def _where(args) -> str:
    return " ".join(f"{flag} {value}" for flag, value in (("--dir", args.dir), ("--filter", args.filter)) if value) \
        or "the whole dataset"


def _parser() -> argparse.ArgumentParser:
    # --root and --project before or after the command (a subcommand's default must not undo the main's)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--root", default=argparse.SUPPRESS,
                       help="the local platform's folder (default: $DATALOOP_PATH/local, as platform.root)")
    where.add_argument("--project", default=argparse.SUPPRESS, help="the project inside it (default: local)")
    # --json the same way, for the listings (main refuses it before another command)
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                         help=f"print JSON instead of a table ({', '.join(LISTINGS)})")
    parser = argparse.ArgumentParser(
        prog="python -m runner.store", parents=[where, as_json],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="What the local platform holds, and deleting what is no longer needed.",
        epilog="examples:\n" + __doc__.split("\n\n")[1])
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("datasets", parents=[where, as_json],
                        help="the datasets: items, annotations, predictions, models")

    listing = commands.add_parser("models", parents=[where, as_json],
                                  help="the models and versions, oldest first, with their latest metrics")
    listing.add_argument("--dataset", help="only the models of this dataset")
    listing.add_argument("--status", choices=STATUSES, help="only models with this status")
    listing.add_argument("--evaluated-on", metavar="SUBSET",
                         help="the metrics of each version's latest evaluation on this subset of its own (test, "
                              "validation, ...), not its latest of all")
    listing.add_argument("--sort", metavar="METRIC", help="best first by this metric of the latest evaluation "
                         "(e.g. accuracy, AP; a *loss* or *error* metric: lowest first); those without it last")

    show = commands.add_parser("show", parents=[where, as_json],
                               help="one model version: configuration, subsets, artifacts, run folder, latest evaluation")
    show.add_argument("name", help="the version's name (python -m runner.store models lists them)")
    compare = commands.add_parser("compare", parents=[where, as_json],
                                  help="versions side by side: latest metrics (the best marked), the facts and "
                                       "configuration settings in which they differ")
    compare.add_argument("names", nargs="+", help="two or more versions; shell-style patterns "
                                                  "('sklearn-digits-2026*') name every version they match")
    compare.add_argument("--evaluated-on", metavar="SUBSET",
                         help="each version's latest evaluation on this subset of its own, not its latest of all")

    delete = commands.add_parser("delete-model", parents=[where],
                                 help="delete models: artifacts, metrics, evaluations, predictions")
    delete.add_argument("names", nargs="+", help="model names; shell-style patterns ('sklearn-digits-2026*') match many")
    delete.add_argument("--status", choices=STATUSES, help="only those with this status (e.g. failed)")
    delete.add_argument("--keep-predictions", action="store_true", help="keep the annotations the models made")
    delete.add_argument("--force", action="store_true", help="also models in status 'training'")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask")

    delete = commands.add_parser("delete-dataset", parents=[where],
                                 help="delete a dataset: items, annotations, feature vectors")
    delete.add_argument("name", help="the dataset's name")
    delete.add_argument("--with-models", action="store_true", help="also delete the models whose dataset it is")
    delete.add_argument("--force", action="store_true", help="with --with-models: also models in status 'training'")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask")

    out = commands.add_parser("export", parents=[where],
                              help="write a dataset's items and annotations: a Dataloop export folder, a CSV or a "
                                   "COCO JSON")
    out.add_argument("dataset", help="the dataset's name")
    out.add_argument("dest", help="a new (or empty) folder to write items/ and json/ into; a new file for csv or coco")
    out.add_argument("--format", choices=FORMATS,
                     help="dataloop (a folder), csv (a row per annotation) or coco (instances JSON: boxes, polygons, "
                          "masks); default: csv for a .csv file, coco for .json, dataloop otherwise")
    out.add_argument("--polygons-as-rle", action="store_true",
                     help="coco: write each polygon as the mask the runner draws of it (outline pixels in, as "
                          "Dataloop draws polygons), so COCOeval's segm scores read the shapes the runner scored")
    out.add_argument("--model", help="of the predictions, keep only this model version's (default: every model's)")
    out.add_argument("--no-ground-truth", action="store_true", help="leave the ground-truth annotations out")
    out.add_argument("--no-predictions", action="store_true", help="leave every model's predictions out")
    out.add_argument("--type", action="append", metavar="TYPE",
                     help="only annotations of this type (box, segment, binary, class, ...); repeat, or separate "
                          "with commas, for several")
    out.add_argument("--dir", help="only the items in this folder of the dataset and below (e.g. /test)")
    out.add_argument("--filter", help="only the items matching this DQL JSON (the filter of dl.Filters().prepare())")
    moved = commands.add_parser("export-model", parents=[where],
                                help="write one model version (record, evaluations, artifacts) to a zip that "
                                     "import-model reads into another store")
    moved.add_argument("name", help="the version's name")
    moved.add_argument("dest", help="a new .zip file (written whole or not at all)")
    moved.add_argument("--force", action="store_true", help="replace DEST if it exists")
    moved = commands.add_parser("import-model", parents=[where],
                                help="create a model version from an export-model zip, tied to a dataset here")
    moved.add_argument("source", help="the .zip that export-model wrote")
    moved.add_argument("--dataset", help="the dataset here it belongs to (default: the one of the name it was "
                                         "trained on)")
    moved.add_argument("--name", help="import it under this name (default: its own)")
    vectors = commands.add_parser("vectors", parents=[where],
                                  help="write a version's feature vectors (pipeline=embed) to a .npz or .csv file")
    vectors.add_argument("name", help="the version's name")
    vectors.add_argument("dest", help="a new file: .npz (arrays item_ids, datasets, filenames, vectors) or .csv (a row "
                                      "per item: item_id, dataset, filename, v0, v1, ...)")
    vectors.add_argument("--dataset", help="only the vectors of this dataset's items (default: of every item the "
                                           "version embedded)")
    studies_help = "the studies file or storage URL (default: $DATALOOP_PATH/studies/optuna.db, paths.studies_db)"
    listing = commands.add_parser("studies", parents=[where, as_json],
                                  help="the Optuna studies of the searches: trials, best, the model version of the best")
    listing.add_argument("--storage", help=studies_help)
    delete = commands.add_parser("delete-study", parents=[where],
                                 help="delete an Optuna study (its model versions stay: delete-model deletes them)")
    delete.add_argument("name", help="the study's name (python -m runner.store studies lists them)")
    delete.add_argument("--storage", help=studies_help)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask")
    settle = commands.add_parser("settle-study", parents=[where],
                                 help="settle the trials a killed search left running: told the value of a job that "
                                      "finished, else marked failed (only while no search of the study runs)")
    settle.add_argument("name", help="the study's name (python -m runner.store studies lists them)")
    settle.add_argument("--sweep", action="append", default=[], metavar="FOLDER",
                        help="a multirun folder of the killed search, whose finished jobs give their trials' values "
                             "(repeatable); without one, every running trial is marked failed")
    settle.add_argument("--storage", help=studies_help)
    cleaning = commands.add_parser("check", parents=[where],
                                   help="find records whose file is gone or damaged, and files no record uses; "
                                        "what the store and its copies take on disk")
    cleaning.add_argument("--clean", action="store_true",
                          help="remove the files no record uses (a record's file is never removed), and the "
                               "models/<name>/ folders of models no longer in the store")
    cleaning.add_argument("--clean-model-data", action="store_true",
                          help="remove the training data copies in the model_data/ folder beside the store (not "
                               "those of a training under way); asks first")
    cleaning.add_argument("--yes", "-y", action="store_true", help="with --clean-model-data: do not ask")
    cleaning.add_argument("--compact", action="store_true",
                          help="give platform.db's free pages (left by deletes) back to the disk (SQLite VACUUM); "
                               "refused while another process writes to the store")
    cleaning.add_argument("--verify", action="store_true",
                          help="also hash every file, to find one changed without changing its size (slower: reads "
                               "every byte)")
    cleaning.add_argument("--folder", action="append", default=[], metavar="DATASET=FOLDER",
                          help="with --restore: the folder a dataset's files moved to, imported from instead of the "
                               "one recorded (which it then replaces); repeatable")
    cleaning.add_argument("--restore", action="store_true",
                          help="import the datasets whose item files are gone again from their sources, which puts "
                               "the files back")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "json", False) and args.command not in LISTINGS:
        parser.error(f"--json: {args.command} prints no listing (--json goes with {' or '.join(LISTINGS)})")
    try:
        if args.command in ("studies", "delete-study", "settle-study"):  # the store only names the versions
            return _studies_command(args)
        platform = _platform(args)
        commands: dict[str, Callable[[], int | None]] = {
            "datasets": lambda: _show(args, datasets(platform), _print_datasets, platform),
            "models": lambda: _show(args, model_rows(platform, models(platform, args.dataset, args.status), args.sort,
                                               args.evaluated_on), _print_models, platform),
            "show": lambda: _show_version(platform, args),
            "compare": lambda: _compare(platform, args),
            "delete-model": lambda: delete_models(platform, args),
            "delete-dataset": lambda: delete_dataset(platform, args),
            "export": lambda: export(platform, args),
            "export-model": lambda: _export_model(platform, args),
            "import-model": lambda: _import_model(platform, args),
            "vectors": lambda: _vectors(platform, args),
            "check": lambda: check(platform, args),
        }
        return commands[args.command]() or 0
    except RunnerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _show_version(platform, args) -> None:
    from .model_details import model_details, print_details

    _show(args, model_details(platform, args.name), lambda details, _p, _a: print_details(details), platform)


def _compare(platform, args) -> None:
    from .model_compare import chosen_names, comparison, print_comparison

    _show(args, comparison(platform, chosen_names(platform, args.names), _evaluated_subset(platform, args.evaluated_on)),
          lambda compared, _p, _a: print_comparison(compared), platform)


def _export_model(platform, args) -> None:
    from .model_transfer import export_model

    print(export_model(platform, args.name, Path(args.dest), args.force))


def _import_model(platform, args) -> None:
    from .model_transfer import import_model

    print(import_model(platform, Path(args.source), args.dataset, args.name))


def _vectors(platform, args) -> None:
    from .vector_export import export_vectors

    print(export_vectors(platform, args.name, Path(args.dest), args.dataset))


def _studies_command(args) -> int:
    from .study_listing import delete_study, print_studies, settle_study, storage_of, studies, study_versions
    from .trial_versions import TrialVersions

    storage = storage_of(args.storage)
    try:
        platform = _platform(args)
        versions = TrialVersions(platform.store.list_models(platform.project.id))
    except NotFoundError:  # no local platform: the studies still list, without version names
        versions = None
    if args.command == "settle-study":
        told, failed = settle_study(storage, args.name, args.sweep)
        print(f"study {args.name!r}: {told} running trial(s) had finished (told their value), {failed} marked failed"
              + ("" if told + failed else " (it held no running trial a job settles)"))
        return 0
    if args.command == "studies":
        rows = studies(storage, versions)
        if getattr(args, "json", False):
            print(json.dumps(rows, indent=2, default=str))
        else:
            print_studies(rows, storage)
        return 0
    trials, kept = study_versions(storage, args.name, versions)
    stay = (f"; the {len(kept)} model version(s) its trials trained stay in the store: {first_few(kept, 10)} "
            f"(python -m runner.store delete-model {' '.join(kept)} deletes them)") if kept else ""
    if not confirm(f"delete study {args.name!r} ({trials} trials) from {storage}{stay}?", args.yes):
        return 1
    delete_study(storage, args.name)
    print(f"deleted study {args.name!r} ({trials} trials) from {storage}{stay}")
    return 0


def _show(args, rows: list[dict], printer, platform) -> None:
    if getattr(args, "json", False):  # not there unless given (before or after the command)
        print(json.dumps(rows, indent=2, default=str))
    else:
        printer(rows, platform, args)


if __name__ == "__main__":
    from .closed_pipe import printing

    sys.exit(printing(main))
