"""``python -m runner.store studies`` and ``delete-study``: the stored Optuna studies of the searches
(``hparams_search``), their trials, and the model version of each one's best trial."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .errors import NotFoundError
from .model_details import day
from .paths import dataloop_path
from .text_table import aligned, did_you_mean, number_cell
from .trial_versions import TrialVersions


def storage_of(given: str | None) -> str:
    """The storage URL: ``--storage`` as given (a URL, or a SQLite file), else the runner's studies
    file (``paths.studies_db``). A file that is not there is an error: Optuna would make an empty one."""
    if given and "://" in given:
        return given
    path = Path(given).expanduser() if given else dataloop_path() / "studies" / "optuna.db"
    if not path.is_file():
        raise NotFoundError(f"no studies file at {path}", where="--storage" if given else "paths.studies_db",
                            fix="a search makes it (python -m runner hparams_search=<preset>); --storage <file or "
                                "URL> reads another (a search's hydra.sweeper.storage)")
    return f"sqlite:///{path.resolve()}"


def _load(storage: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna, [s.study_name for s in optuna.study.get_all_study_summaries(storage=storage)]


_STATES = {"COMPLETE": "complete", "FAIL": "failed", "RUNNING": "running", "PRUNED": "pruned", "WAITING": "waiting"}


def studies(storage: str, versions: TrialVersions | None) -> list[dict]:
    """One row per study, oldest first: its search, trials by state, direction, best trial and the
    version that ran it (None where the store holds no such run)."""
    optuna, names = _load(storage)
    rows = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        best = None
        if any(t.state == optuna.trial.TrialState.COMPLETE for t in trials) and len(study.directions) == 1:
            trial = study.best_trial
            best = {"value": trial.value, "trial": trial.number, "params": trial.params,
                    "version": versions(trial) if versions else None}
        started = [t.datetime_start for t in trials if t.datetime_start is not None]
        rows.append({"name": name, "search": next((t.user_attrs.get("hparams_search") for t in trials
                                                   if t.user_attrs.get("hparams_search")), None),
                     "direction": "/".join(d.name.lower() for d in study.directions),
                     "trials": len(trials), "states": dict(Counter(_STATES.get(t.state.name, t.state.name.lower())
                                                                   for t in trials)),
                     "best": best, "started": min(started).isoformat() if started else None})
    return sorted(rows, key=lambda r: r["started"] or "")


def print_studies(rows: list[dict], storage: str) -> None:
    print(f"studies: {storage}")
    if not rows:
        print("no studies (a search makes one: python -m runner hparams_search=<preset>)")
        return
    table = [[r["name"], r["search"] or "", f"{r['trials']} (" + ", ".join(f"{n} {s}" for s, n in r["states"].items())
              + ")", r["direction"], number_cell(r["best"]["value"]) if r["best"] else "",
              str(r["best"]["trial"]) if r["best"] else "", (r["best"] or {}).get("version") or "",
              day(r["started"]).replace("T", " ")] for r in rows]
    print("\n".join(aligned(["study", "search", "trials", "direction", "best", "trial", "model version of the best",
                             "started"], table)))


def study_versions(storage: str, name: str, versions: TrialVersions | None) -> tuple[int, list[str]]:
    """(trials, the versions that ran its finished trials) of study ``name``; an unknown name is an
    error naming the closest."""
    optuna, names = _load(storage)
    if name not in names:
        raise NotFoundError(f"no study named {name!r}{did_you_mean(name, names)} in {storage}",
                            fix="nothing was deleted; python -m runner.store studies lists them")
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    found = [versions(t) for t in trials if t.state == optuna.trial.TrialState.COMPLETE] if versions else []
    return len(trials), list(dict.fromkeys(v for v in found if v))


def settle_study(storage: str, name: str, sweeps: list[str]) -> tuple[int, int]:
    """The trials study ``name`` holds RUNNING (its search was killed before it could settle them):
    those a job under one of ``sweeps`` finished are told its value, the others marked FAIL. Returns
    (told, failed); an unknown name is an error naming the closest."""
    from .studies import settle_interrupted_trials

    _optuna, names = _load(storage)
    if name not in names:
        raise NotFoundError(f"no study named {name!r}{did_you_mean(name, names)} in {storage}",
                            fix="python -m runner.store studies lists them")
    for sweep in sweeps:
        if not Path(sweep).is_dir():
            raise NotFoundError(f"there is no sweep folder {sweep}", where="--sweep",
                                fix="the multirun folder of the search that was killed (multirun/<date>/<time>)")
    return settle_interrupted_trials(storage, name, since=0.0, sweep_dirs=sweeps)


def delete_study(storage: str, name: str) -> None:
    import optuna

    optuna.delete_study(study_name=name, storage=storage)
