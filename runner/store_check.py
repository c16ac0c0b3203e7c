"""``python -m runner.store check``: the store's records against its files, what the store and the
copies beside it take on disk, and the clean-ups: files no record uses (``--clean``), training data
copies (``--clean-model-data``), the database's free pages (``--compact``), imports again
(``--restore``)."""

from __future__ import annotations

from pathlib import Path

from .confirm import confirm, refuse_unasked
from .errors import RunnerError
from .text_table import first_few


def check(platform, args) -> int:
    """Exit 1 when a record's file is gone or damaged, or a model's dataset is gone; unused bytes are only
    reported (removed with --clean)."""
    from .platform.local.check import check_store, remove_unused
    from .training_claim import process_gone

    moved = _moved_folders(args.folder)
    if moved and not args.restore:
        raise RunnerError("--folder names where a dataset's files are now, for --restore", where="--folder",
                          fix="add --restore")
    if args.clean_model_data and platform.copies_home is None:
        raise RunnerError(f"--clean-model-data: the local platform at {platform.root} has no model_data/ of its own "
                          f"({no_copies_of_its_own(platform)})", where=f"--root {platform.root}",
                          fix="nothing was removed; clean the copies with the store beside them: python -m "
                              "runner.store check --clean-model-data --root <that DATALOOP_PATH>/local")
    if args.clean_model_data:  # asked later: refused now, before anything is removed
        refuse_unasked(args.yes, "removing the training data copies")
    found = check_store(platform, verify=args.verify)
    if args.restore and any(m.kind == "item" for m in found.missing):
        _restore(platform, found, moved)
        found = check_store(platform, verify=args.verify)
    print(f"checked the files of {found.items} item(s) and {found.artifacts} artifact(s) in the local platform "
          f"at {platform.root}" + (", hashing each" if args.verify else ""))
    for kind, fix in (("item", "--restore imports the dataset again from its source: the same files put their "
                               "bytes back"),
                      ("artifact", "train the version again, or delete it (python -m runner.store delete-model NAME)")):
        for damaged, what in ((False, "missing: the files of {} {}(s) are gone from blobs/"),
                              (True, "damaged: the files of {} {}(s) in blobs/ are not the bytes stored")):
            listed = [m for m in found.missing if m.kind == kind and bool(m.damaged) == damaged]
            if listed:
                print(f"{what.format(len(listed), kind)}; {fix}")
                for m in listed[:20]:
                    print(f"  {m.owner}: {m.name}  ({m.path}{': ' + m.damaged if damaged else ''})")
                if len(listed) > 20:
                    print(f"  (and {len(listed) - 20} more)")
    _print_without_dataset(platform, found.without_dataset)
    leftovers = len(found.unused) + len(found.loose)
    if leftovers and args.clean:
        removed, size = remove_unused(platform, found)
        print(f"removed {removed} file(s) ({_megabytes(size)}) that no record used"
              + (f"; {leftovers - removed} came into use meanwhile, or could not be removed" if removed < leftovers
                 else ""))
    elif leftovers:
        print(f"unused: {leftovers} file(s) ({_megabytes(found.reclaimable)}) that no record uses, left by an import "
              "or a save that stopped half-way, or put in blobs/ by hand; --clean removes them")
    if not found.missing and not leftovers and not found.without_dataset:
        print("every record has its file, and every file a record")
    in_training = [m for m in platform.store.list_models(platform.project.id) if m.get("status") == "training"]
    gone = [m for m in in_training if process_gone(m)]
    if gone:
        print(f"left in training: {first_few([m['name'] for m in gone])}: status training, but the process that "
              f"trained {'it' if len(gone) == 1 else 'them'} is gone (killed); python -m runner.store delete-model "
              "<name> removes one, and a run with model.name=<name> trains on from the checkpoint it saved, if any")
    # a training under way keeps its copy; a dead one's is no one's
    declined = _space_and_copies(platform, args, found, training={m["id"] for m in in_training if m not in gone})
    if args.compact:
        _compact(platform)
    return 1 if found.missing or found.without_dataset or declined else 0


def _print_without_dataset(platform, rows: list[tuple[str, str, str]]) -> None:
    """The models whose dataset is gone (a delete of the dataset raced a run making them): their subsets
    filter no dataset, so no run can use them; listed with the delete that removes them."""
    if not rows:
        return
    print(f"dataset gone: {len(rows)} model version(s) name a dataset no longer in the store, so no run can train, "
          "evaluate or predict with them; delete them:")
    for project, name, dataset in rows:
        print(f"  {name}: dataset {dataset}" + ("" if project == platform.project.name else f" (project {project})"))
    for project in dict.fromkeys(project for project, _name, _dataset in rows):
        names = " ".join(name for p, name, _dataset in rows if p == project)
        print(f"  python -m runner.store delete-model {names}"
              + ("" if project == platform.project.name else f" --project {project}"))


def _space_and_copies(platform, args, found, training: set[str]) -> bool:
    """Report what the store and the copies beside it take on disk; clean the copies asked to. True when
    a removal was declined."""
    from .platform.local.compaction import database_size, free_bytes
    from .platform.local.copies import local_copies, remove_leftovers, remove_training_copies

    free = free_bytes(platform.store)
    database = (f"platform.db {_megabytes(database_size(platform.store))}"
                + (f" ({_megabytes(free)} of it free pages: --compact gives them back)" if free else ""))
    home = platform.copies_home
    if home is None:
        print(f"space on disk: {database}, blobs/ {_megabytes(found.blobs_on_disk)}; no models/ or model_data/ "
              f"copies of its own ({no_copies_of_its_own(platform)})")
        return False
    copies = local_copies(platform, home, training)
    print(f"space on disk: {database}, blobs/ {_megabytes(found.blobs_on_disk)}, models/ "
          f"{_megabytes(copies.models_size)}, model_data/ {_megabytes(copies.model_data_size)} ({copies.copies} "
          f"training data cop{'y' if copies.copies == 1 else 'ies'}) in {home}")
    if copies.leftovers and args.clean:
        removed, size = remove_leftovers(platform, copies.leftovers)
        print(f"models: removed {removed} folder(s) ({_megabytes(size)} on disk) of models no longer in the store")
    elif copies.leftovers:
        print(f"models: {len(copies.leftovers)} folder(s) ({_megabytes(sum(copies.leftovers.values()))} on disk) in "
              f"{home / 'models'} of models no longer in the store (a delete stopped half-way): "
              f"{first_few([f.name for f in copies.leftovers])}; --clean removes them")
    held = copies.training_data
    size = sum(held.values())
    what = f"{len(held)} training data cop{'y' if len(held) == 1 else 'ies'} ({_megabytes(size)} on disk)"
    kept = f"; left the copies of {copies.kept} training(s) under way" if copies.kept else ""
    if held and args.clean_model_data:
        if not confirm(f"remove {what} from {home / 'model_data'}{kept}?", args.yes,
                       "removing the training data copies"):
            return True
        removed, size = remove_training_copies(held)
        print(f"model_data: removed {removed} training data cop{'y' if removed == 1 else 'ies'} ({_megabytes(size)} "
              f"on disk)" + (f"; {len(held) - removed} could not be removed" if removed < len(held) else "") + kept)
    elif held:
        print(f"model_data: {what} in {home / 'model_data'}, which no later run reads: --clean-model-data removes "
              "them (a training under way keeps its own), and pipeline.cleanup=true deletes each copy when its "
              "training ends")
    return False


def no_copies_of_its_own(platform) -> str:
    return (f"its folder is not named 'local', so no folder beside it is its own: a run with platform.root="
            f"{platform.root} keeps its copies under its DATALOOP_PATH, beside the store there")


def _compact(platform) -> None:
    from .platform.local.compaction import compact

    done = compact(platform.store)
    print(f"platform.db: compacted from {_megabytes(done.before)} to {_megabytes(done.after)}"
          + ("" if done.checkpointed else " so far: other processes are reading it; it shrinks at the next "
                                          "checkpoint, once they are done"))


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _moved_folders(given: list[str]) -> dict[str, str]:
    """``--folder DATASET=FOLDER`` options: where each dataset's files are now."""
    moved = {}
    for pair in given:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            raise RunnerError(f"--folder {pair!r} is not DATASET=FOLDER", where=f"--folder {pair}",
                              fix="e.g. --folder photos=/data/photos-moved")
        moved[name] = str(Path(folder).expanduser().resolve())
    return moved


def _restore(platform, found, moved: dict[str, str]) -> None:
    """Import again, from the source each was imported from (or the folder its files moved to), the
    datasets whose item files are gone: the importers put the bytes of files they hold already back,
    and add nothing."""
    from hydra.utils import instantiate

    for name in sorted({m.owner for m in found.missing if m.kind == "item"}):
        dataset = platform.find_dataset(name)
        source = platform.import_source(dataset) if dataset is not None else None
        if source and name in moved:
            source = {**source, "folder": moved[name]}
        if not source or "_target_" not in source:
            print(f"restore: dataset {name!r} records no import source (imported before imports recorded theirs): "
                  "import it again the same way, from the same files")
            continue
        print(f"restore: importing dataset {name!r} again from {source.get('folder') or source['_target_']}")
        for m in found.missing:  # a damaged file goes, for the import to write it whole (one cut short it would)
            if m.kind == "item" and m.owner == name and m.damaged:
                Path(m.path).unlink(missing_ok=True)
        try:
            instantiate(source, platform=platform)
            if name in moved:  # where the files are now: the next restore reads them there
                platform.record_import_source(dataset, source)
        except Exception as err:  # noqa: BLE001 - e.g. the source folder moved: the others still restore
            cause = err.__cause__ or err  # Hydra's InstantiationException wraps the importer's error
            what = getattr(cause, "what", None) or f"{type(cause).__name__}: {cause}"
            print(f"restore: dataset {name!r} could not be imported again: {what}; if its files moved: "
                  f"check --restore --folder {name}=<where they are now>")
