"""The config tree under conf/, composed in-process with Hydra's compose API, and runs of it through
``runner.app.run`` on a real local platform (the digits dataset, real training)."""

from __future__ import annotations

import itertools
import json
import logging
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from hydra.utils import get_class
from omegaconf import OmegaConf

from runner import app, run_plan
from runner.data import import_digits
from runner.errors import ConfigError, EmptySubsetError, FilterError, NotFoundError
from runner.platform.local import LocalPlatform
from runner.version_names import version_name

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
DIGITS_ITEMS = 1797

# values an option leaves as ??? and a run must be given
REQUIRED = {
    ("dataset", "image_folder"): ["dataset.name=x", "dataset.folder=/tmp/x"],
    ("dataset", "dataloop_export"): ["dataset.name=x", "dataset.folder=/tmp/x"],
    ("dataset", "unlabeled_images"): ["dataset.name=x", "dataset.folder=/tmp/x"],
    ("dataset", "text_folder"): ["dataset.name=x", "dataset.folder=/tmp/x"],
    ("dataset", "unlabeled_texts"): ["dataset.name=x", "dataset.folder=/tmp/x"],
    ("dataset", "coco"): ["dataset.name=x", "dataset.annotation_file=/tmp/x.json", "dataset.images_dir=/tmp/x"],
    ("platform", "dataloop"): ["platform.project=my-project"],
}

OPTIONS = sorted((path.parent.name, path.stem) for path in CONF_DIR.glob("*/*.yaml"))


def options_of(group: str) -> list[str]:
    return [option for g, option in OPTIONS if g == group]


def compose_config(*overrides: str, hydra: bool = False):
    app.register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


def resolved(cfg) -> dict:
    """Every key but ``hydra`` resolved, with no ??? left."""
    body = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    return OmegaConf.to_container(body, resolve=True, throw_on_missing=True)


def run(tmp_path: Path, name: str, *overrides: str) -> tuple[float | None, Path]:
    out = tmp_path / name
    return app.run(compose_config(*overrides), out), out


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def platform_at(dataloop_home: Path) -> LocalPlatform:
    """The platform the default config uses: ${DATALOOP_PATH}/local."""
    return LocalPlatform(dataloop_home / "local")


def table_counts(platform: LocalPlatform) -> dict[str, int]:
    tables = [row[0] for row in platform.store.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {table: platform.store.query(f"SELECT COUNT(*) FROM {table}")[0][0] for table in tables}


# -- composition ---------------------------------------------------------------------------------


def test_the_config_groups_are_all_found():
    groups = {group for group, _option in OPTIONS}
    assert {"adapter", "model", "dataset", "subsets", "metrics", "pipeline", "platform", "experiment",
            "hparams_search", "debug", "paths", "hydra"} <= groups


@pytest.mark.parametrize("adapter", options_of("adapter"))
def test_the_debug_preset_shortens_only_the_keys_of_the_adapter_chosen(adapter):
    plain = resolved(compose_config(f"adapter={adapter}"))["adapter"]["configuration"]
    quick = resolved(compose_config(f"adapter={adapter}", "debug=default"))["adapter"]["configuration"]
    # no key of another adapter (an estimator's max_iter in the torch network's configuration)
    assert set(quick) == set(plain)
    shortened = {key for key in plain if quick[key] != plain[key]}
    assert shortened == {"sklearn": {"estimator"}, "torch_cnn": {"epochs"}}.get(adapter, set())
    if adapter == "sklearn":
        assert quick["estimator"] == {**plain["estimator"], "max_iter": 100}
    if adapter == "torch_cnn":
        assert (plain["epochs"], quick["epochs"]) == (15, 3)


def test_the_debug_preset_logs_the_chosen_adapters_own_package_at_debug_level():
    verbose = compose_config("debug=default", "adapter._target_=mypkg.nets.MyAdapter", hydra=True).hydra.verbose
    assert OmegaConf.to_container(verbose, resolve=True) == ["runner", "adapters", "mypkg"]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_resolves_and_plans(group, option):
    overrides = [f"{group}={option}", *REQUIRED.get((group, option), [])]
    cfg = compose_config(*overrides, hydra=True)
    family = run_plan.OUTPUT_FAMILY.get(cfg.model.output_type, cfg.model.output_type)
    if group == "metrics" and cfg.metrics.get("output_type") not in (None, family):
        # a metrics set for another output type plans with a model of that type
        overrides.append(f"model.output_type={cfg.metrics.output_type}")
        cfg = compose_config(*overrides, hydra=True)
    elif group != "metrics" and cfg.metrics.get("output_type") not in (None, family):
        # an option for another output type (an adapter, an experiment) plans with the metrics set for it
        fitting = [o for o in options_of("metrics") if compose_config(f"metrics={o}").metrics.output_type == family]
        if fitting:
            overrides.append(f"metrics={fitting[0]}")
            cfg = compose_config(*overrides, hydra=True)

    if group != "hydra":
        assert cfg.hydra.runtime.choices[group] == option
    settings = resolved(cfg)
    assert settings["dataset"]["name"]
    assert settings["model"]["configuration"]["batch_size"] == settings["batch_size"]
    assert settings["platform"].get("root", "/local").endswith("/local")  # the dataloop platform has no root
    # the run and sweep folders the app writes into resolve too
    assert cfg.hydra.run.dir.startswith("outputs/")
    assert cfg.hydra.sweep.dir.startswith("multirun/")
    assert cfg.hydra.job.name == "dlrun"

    if group == "hparams_search":
        sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
        assert sweeper["_target_"].endswith("OptunaSweeper")
        assert sweeper["direction"] == settings["objective"]["direction"]
        assert sweeper["sampler"]["seed"] == settings["seed"]
        assert cfg.hydra.mode == RunMode.MULTIRUN
        assert all(key.startswith("adapter.") for key in sweeper["params"])
    if group == "debug":
        assert settings["batch_size"] == 16 and cfg.hydra.verbose
    if group == "experiment":
        assert cfg.hydra.runtime.choices["adapter"] in options_of("adapter")

    adapter_class = get_class(cfg.adapter._target_)
    if any(not run_plan._defines(adapter_class, fn) for step in cfg.pipeline.steps for fn in run_plan.STEP_NEEDS[step]):
        with pytest.raises(ConfigError, match="needs the user function"):  # e.g. embed with a classifier
            run_plan.plan(compose_config(*overrides))
        return
    the_plan = run_plan.plan(compose_config(*overrides))
    assert the_plan.steps and set(the_plan.steps) <= set(run_plan.STEPS)
    scores = cfg.metrics.get("scores") or {}
    assert set(the_plan.metric_functions) == set(scores) or "evaluate" not in the_plan.steps
    assert all(callable(f) for f in the_plan.metric_functions.values())


@pytest.mark.parametrize("adapter", options_of("adapter"))
def test_plan_accepts_every_valid_combination_of_adapter_metrics_subsets_and_pipeline(adapter):
    """Valid: the metrics set scores the model's output type, or the pipeline does not evaluate."""
    combos = list(itertools.product(options_of("metrics"), options_of("subsets"), options_of("pipeline")))
    assert len(combos) >= 2 * 3 * 5
    for metrics, subsets, pipeline in combos:
        cfg = compose_config(f"adapter={adapter}", f"metrics={metrics}", f"subsets={subsets}",
                             f"pipeline={pipeline}")
        fits = cfg.metrics.get("output_type") in (None, cfg.model.output_type)
        adapter_class = get_class(cfg.adapter._target_)
        missing = [fn for step in cfg.pipeline.steps for fn in run_plan.STEP_NEEDS[step]
                   if not run_plan._defines(adapter_class, fn)]
        if missing:
            with pytest.raises(ConfigError, match="needs the user function"):
                run_plan.plan(cfg)
        elif fits or "evaluate" not in cfg.pipeline.steps:
            assert run_plan.plan(cfg).steps == list(cfg.pipeline.steps), (adapter, metrics, subsets, pipeline)
        else:
            with pytest.raises(ConfigError, match="metrics"):
                run_plan.plan(cfg)


def test_required_lists_every_option_with_a_missing_value():
    marked = {(path.parent.name, path.stem) for path in CONF_DIR.glob("*/*.yaml") if "???" in path.read_text()}
    assert marked == set(REQUIRED)


@pytest.mark.parametrize("option", sorted(REQUIRED), ids=[f"{g}={o}" for g, o in sorted(REQUIRED)])
def test_required_values_are_marked_missing_and_plan_names_the_first(option):
    group, name = option
    cfg = compose_config(f"{group}={name}")
    keys = [assignment.split("=")[0] for assignment in REQUIRED[option]]
    assert all(OmegaConf.is_missing(cfg[group], key.split(".", 1)[1]) for key in keys)
    with pytest.raises(ConfigError, match=keys[0].replace(".", r"\.")):
        run_plan.plan(cfg)


def test_an_extra_metric_under_a_standard_name_is_left_out_with_a_warning(caplog):
    """It would replace the standard metric with one computed otherwise (over the labels scikit-learn
    sees): the standard one stays, as older metrics sets and saved configs name ``accuracy`` there."""
    with caplog.at_level(logging.WARNING, logger="runner"):
        the_plan = run_plan.plan(compose_config("+metrics.scores.f1_macro._target_=sklearn.metrics.f1_score",
                                           "+metrics.scores.accuracy._target_=sklearn.metrics.accuracy_score"))
    assert set(the_plan.metric_functions) == {"matthews_corrcoef"}
    assert "metrics.scores.f1_macro is left out" in caplog.text and "f1_macro_sklearn" in caplog.text


def test_the_metrics_of_per_class_scores_can_be_the_objective():
    """top-k accuracy and ROC-AUC are computed when the adapter gives per-class scores (torch_cnn does)."""
    for metric in ("roc_auc_ovr_macro", "top_2_accuracy"):
        assert run_plan.plan(compose_config("adapter=torch_cnn", f"objective.metric={metric}")).steps
    with pytest.raises(ConfigError, match="top_k_accuracy"):
        run_plan.plan(compose_config("adapter=torch_cnn", "objective.metric=top_k_accuracy"))


def test_batch_size_reaches_the_model_configuration():
    cfg = compose_config("batch_size=16")
    assert cfg.model.configuration.batch_size == 16
    assert run_plan.plan(cfg).settings["model"]["configuration"]["batch_size"] == 16
    # and the default follows the top-level key
    assert compose_config().model.configuration.batch_size == compose_config().batch_size == 32


# -- pipelines -----------------------------------------------------------------------------------


def test_train_evaluate_writes_every_output(tmp_path, dataloop_home):
    accuracy, out = run(tmp_path, "run")

    assert accuracy is not None and accuracy >= 0.9
    for name in ("metrics.json", "model.json", "data.json", "confusion_matrix.png"):
        assert (out / name).is_file(), name
    metrics = read_json(out / "metrics.json")
    assert metrics["accuracy"] == pytest.approx(accuracy)
    model = read_json(out / "model.json")
    assert model["status"] == "trained"
    assert model["artifacts"] == ["model.skops"]
    assert model["configuration"]["batch_size"] == 32
    data = read_json(out / "data.json")
    assert set(data["items_per_subset"]) == {"train", "validation", "test"}
    assert sum(data["items_per_subset"].values()) == DIGITS_ITEMS
    assert set(data["content_hash"]) == set(data["items_per_subset"])
    assert all(len(digest) == 64 for digest in data["content_hash"].values())
    assert metrics["n_items"] == data["items_per_subset"]["test"]
    # the platform is the one under DATALOOP_PATH
    assert (dataloop_home / "local" / "platform.db").is_file()


def test_an_evaluate_that_returns_the_model_completes_a_single_run_with_a_warning(tmp_path, dataloop_home, caplog):
    """The Dataloop convention (evaluate returns the model): no metrics dict, so no metrics.json and no
    objective; a single run still completes (a sweep, which ranks by the objective, stops the job)."""
    with caplog.at_level(logging.WARNING, logger="runner"):
        objective, out = run(tmp_path, "own-evaluate", "adapter._target_=tests.sample_adapters.EvaluateReturnsModel")
    assert objective is None and not (out / "metrics.json").exists()
    assert read_json(out / "run.json")["status"] == "completed"
    assert "the adapter's evaluate returned no metrics" in caplog.text and "return a dict of metrics" in caplog.text


def test_an_adapter_whose_init_takes_its_model_is_built_with_the_version_as_on_dataloop(tmp_path, dataloop_home):
    """``def __init__(self, model_entity)`` with no default: Dataloop always passes the model, so the
    runner does too, in a run and in each step after training."""
    target = "adapter._target_=tests.sample_adapters.CentroidBuiltWithItsModel"
    objective, out = run(tmp_path, "built-with-model", target)
    assert objective is not None and objective > 0.5
    version = read_json(out / "model.json")
    assert version["status"] == "trained" and version["artifacts"] == ["centroids.npz"]
    again, _ = run(tmp_path, "evaluate", target, "pipeline=evaluate", f"model.name={version['name']}")
    assert again == objective


def test_a_run_folder_used_again_keeps_no_output_of_the_earlier_run(tmp_path, dataloop_home):
    """hydra.run.dir=fixed twice: a train-only run after a train_evaluate one leaves no metrics.json or
    plot of the first that would pass for its own."""
    run(tmp_path, "fixed")
    assert (tmp_path / "fixed" / "metrics.json").is_file() and (tmp_path / "fixed" / "confusion_matrix.png").is_file()
    (tmp_path / "fixed" / "notes.txt").write_text("mine")
    run(tmp_path, "fixed", "pipeline=train")
    assert not (tmp_path / "fixed" / "metrics.json").exists()
    assert not (tmp_path / "fixed" / "confusion_matrix.png").exists()
    assert "objective" not in read_json(tmp_path / "fixed" / "run.json")  # a train run scores nothing
    assert (tmp_path / "fixed" / "notes.txt").read_text() == "mine"  # only the runner's own files go


def test_train_then_evaluate_predict_embed_that_version(tmp_path, dataloop_home, caplog):
    objective, out = run(tmp_path, "train", "pipeline=train")
    assert objective is None
    assert not (out / "metrics.json").exists()
    assert not (out / "confusion_matrix.png").exists()
    version = read_json(out / "model.json")
    assert version["status"] == "trained" and version["artifacts"] == ["model.skops"]

    platform = platform_at(dataloop_home)
    dataset = platform.get_dataset(name="digits")
    models_before = len(platform.list_models())

    first, evaluated = run(tmp_path, "evaluate", "pipeline=evaluate", f"model.name={version['name']}")
    again, _ = run(tmp_path, "evaluate-again", "pipeline=evaluate", f"model.name={version['name']}")
    assert first is not None and first >= 0.9
    assert first == again
    assert read_json(evaluated / "metrics.json")["accuracy"] == first
    assert read_json(evaluated / "model.json")["id"] == version["id"]
    assert len(platform.list_models()) == models_before

    # on a dataset whose labels it does not know: refused before it predicts anything there
    with pytest.raises(ConfigError) as raised:  # its own subsets (the default) are of another dataset
        run(tmp_path, "evaluate-elsewhere", "pipeline=evaluate", f"model.name={version['name']}", "dataset=shapes",
            "dataset.source.n_images=12")
    assert "trained on dataset 'digits', not 'shapes'" in str(raised.value)
    assert "dataset.name=digits" in str(raised.value)
    assert "subsets=by_dir" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        run(tmp_path, "evaluate-elsewhere", "pipeline=evaluate", f"model.name={version['name']}", "dataset=shapes",
            "dataset.source.n_images=12", "subsets=by_dir")
    assert "nothing to evaluate" in str(raised.value) and "dataset.name=digits" in str(raised.value)
    shapes = platform.get_dataset(name="shapes")
    assert platform.store.count_annotations(shapes.id, version["name"]) == 0
    # predicting there is allowed (a model may label another dataset) but named in a warning
    with caplog.at_level(logging.WARNING, logger="runner"):
        run(tmp_path, "predict-elsewhere", "pipeline=predict", f"model.name={version['name']}", "dataset=shapes",
            "dataset.source.n_images=12", "subsets=by_dir")
    assert f"model '{version['name']}' knows the labels 0, 1, 2, 3, 4, 5, 6, 7 (and 2 more), none of which dataset " \
           "'shapes' has" in caplog.text and "(its own dataset: dataset.name=digits)" in caplog.text
    assert platform.store.count_annotations(shapes.id, version["name"]) > 0
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="runner"):
        _, predicted = run(tmp_path, "predict", "pipeline=predict", f"model.name={version['name']}")
    assert not (predicted / "metrics.json").exists()
    test_items = read_json(predicted / "data.json")["items_per_subset"]["test"]
    assert platform.store.count_annotations(dataset.id, version["name"]) == test_items
    # how to see them: the store's export, for this store and version
    assert f"predicted {test_items} items; to see them: python -m runner.store export digits <new folder> --model " \
        f"{version['name']} --no-ground-truth" in caplog.text
    assert len(platform.list_models()) == models_before
    # evaluating, predicting never retrain or change the version
    stored = platform.get_model(name=version["name"])
    assert stored.id == version["id"] and stored.status == "trained"
    assert [a.local_path for a in stored.artifacts.list()] == ["model.skops"]

    before = table_counts(platform)
    with pytest.raises(ConfigError, match="embed"):
        run(tmp_path, "embed", "pipeline=embed", f"model.name={version['name']}")
    assert table_counts(platform) == before


def test_by_tag_subsets(tmp_path, dataloop_home):
    accuracy, out = run(tmp_path, "run", "subsets=by_tag")
    assert accuracy >= 0.9
    data = read_json(out / "data.json")
    assert sum(data["items_per_subset"].values()) == DIGITS_ITEMS
    assert data["items_per_subset"]["test"] == read_json(out / "metrics.json")["n_items"]
    # the digits importer tags each item with its folder: by_tag selects the items by_dir selects
    platform = platform_at(dataloop_home)
    dataset = platform.get_dataset(name="digits")
    by_dir = resolved(compose_config("subsets=by_dir"))["subsets"]
    assert set(by_dir) == set(data["items_per_subset"])
    for name, subset in by_dir.items():
        assert platform.count_items(dataset, subset) == data["items_per_subset"][name]
        assert platform.fingerprint(dataset, subset) == data["content_hash"][name]


def test_random_split_is_seeded(tmp_path):
    accuracy, first = run(tmp_path, "seed0", "subsets=random_split", "seed=0")
    _, same = run(tmp_path, "seed0-again", "subsets=random_split", "seed=0")
    _, other = run(tmp_path, "seed1", "subsets=random_split", "seed=1")
    assert accuracy >= 0.9

    first_data, same_data, other_data = (read_json(p / "data.json") for p in (first, same, other))
    assert sum(first_data["items_per_subset"].values()) == DIGITS_ITEMS
    assert sum(other_data["items_per_subset"].values()) == DIGITS_ITEMS
    assert first_data["items_per_subset"] == same_data["items_per_subset"]
    assert first_data["content_hash"] == same_data["content_hash"]
    assert other_data["content_hash"]["train"] != first_data["content_hash"]["train"]
    # resolved to id filters, stored on the version
    train_filter = read_json(first / "model.json")["subsets"]["train"]["filter"]
    ids = [clause["id"]["$in"] for clause in train_filter["$and"] if "id" in clause]
    assert len(ids) == 1 and len(ids[0]) == first_data["items_per_subset"]["train"]


def test_random_split_is_the_same_in_every_store(tmp_path):
    """The split hashes each item's path, not its id (which each store makes afresh): two stores that
    imported the same files split them alike, so a seeded run reproduces on another machine."""
    from runner.subsets import random_split

    fractions = {"train": 0.7, "validation": 0.15, "test": 0.15}
    splits = []
    for name in ("one", "two"):
        platform = LocalPlatform(tmp_path / name)
        dataset = import_digits(platform).dataset
        split = random_split(platform, dataset, 3, fractions)
        splits.append({subset: sorted(item.filename for page in platform.iter_items(dataset, f) for item in page)
                       for subset, f in split.items()})
    assert splits[0] == splits[1] and sum(len(v) for v in splits[0].values()) == DIGITS_ITEMS
    assert splits[0]["test"] != sorted(random_split_names(tmp_path / "one", 4, fractions))


def random_split_names(root: Path, seed: int, fractions: dict) -> list[str]:
    from runner.subsets import random_split

    platform = LocalPlatform(root)
    dataset = platform.get_dataset(name="digits")
    return [item.filename for page in platform.iter_items(dataset, random_split(platform, dataset, seed,
                                                                                  fractions)["test"]) for item in page]


def test_evaluate_scores_a_version_on_the_test_subset_it_was_trained_with(tmp_path, dataloop_home, caplog):
    """pipeline=evaluate defaults to subsets=model: a version trained on a seeded random split is scored
    on that split's test items, not on a fresh split that would hold items it was trained on; choosing
    other subsets is allowed and warns of the overlap; subsets the step does not read may be empty."""
    _, trained = run(tmp_path, "train", "subsets=random_split", "seed=3")
    version = read_json(trained / "model.json")
    own_test = read_json(trained / "data.json")["items_per_subset"]["test"]

    caplog.set_level(logging.WARNING, logger="runner")
    _, own = run(tmp_path, "own", "pipeline=evaluate", f"model.name={version['name']}")
    assert read_json(own / "metrics.json")["n_items"] == own_test
    assert read_json(own / "data.json")["content_hash"] == read_json(trained / "data.json")["content_hash"]
    assert "train subset" not in caplog.text

    _, fresh = run(tmp_path, "fresh", "pipeline=evaluate", f"model.name={version['name']}", "subsets=random_split")
    overlap = re.search(r"(\d+) of the (\d+) items evaluated \(subset test\) are in the train subset model "
                        + re.escape(version["name"]), caplog.text)
    assert overlap and int(overlap[2]) == read_json(fresh / "metrics.json")["n_items"] and 0 < int(overlap[1])

    # an unused, empty subset: no error for an evaluate run (a training run needs every subset)
    _, only_test = run(tmp_path, "only-test", "pipeline=evaluate", f"model.name={version['name']}",
                       "subsets=by_dir", "+subsets.extra={filter:{dir:/nowhere},resource:items}")
    assert read_json(only_test / "data.json")["items_per_subset"]["extra"] == 0


def test_a_training_run_whose_test_subset_overlaps_its_train_subset_warns(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="runner")
    _, out = run(tmp_path, "same", "subsets.test.filter=${subsets.train.filter}")
    scored = read_json(out / "metrics.json")["n_items"]
    assert f"{scored} of the {scored} items evaluated (subset test) are in the train subset model" in caplog.text
    assert "give the subsets filters that do not overlap" in caplog.text
    caplog.clear()
    run(tmp_path, "apart", "pipeline=train_evaluate")
    assert "train subset" not in caplog.text


def test_a_version_takes_the_labels_the_dataset_has_now(tmp_path, dataloop_home):
    """model.labels null: each new version gets the dataset's current labels, not those the base model
    was created with, so a class added later is trained and scored."""
    run(tmp_path, "first", "pipeline=train")
    platform = platform_at(dataloop_home)
    dataset = platform.get_dataset(name="digits")
    platform.set_labels(dataset, [*dataset.labels_flat_dict, "ten"])
    _, second = run(tmp_path, "second", "pipeline=train")
    assert read_json(second / "model.json")["labels"][-1] == "ten"
    assert platform.get_model(name="sklearn-digits").labels[-1] == "9"  # the base model is left as it was


def test_a_dataset_in_the_store_with_another_source_is_refused_not_silently_reused(tmp_path, dataloop_home):
    run(tmp_path, "first", "pipeline=train")
    run(tmp_path, "same-source", "pipeline=train")  # the same source: the dataset is reused as it is
    platform = platform_at(dataloop_home)
    before = table_counts(platform)
    with pytest.raises(ConfigError) as raised:
        run(tmp_path, "other-seed", "dataset.source.seed=1")
    message = str(raised.value)
    for mention in ("'digits' is already in the store", "seed=0", "seed=1", "dataset.name=<new name>",
                    "python -m runner.store delete-dataset digits --with-models"):
        assert mention in message, message
    assert table_counts(platform) == before
    run(tmp_path, "new-name", "dataset.name=digits-seed1", "dataset.source.seed=1", "pipeline=train")
    assert len(platform.store.list_datasets(platform.project.id)) == 2


def test_the_same_config_twice_gives_identical_metrics(tmp_path):
    _, a = run(tmp_path, "a", f"platform.root={tmp_path / 'platform-a'}")
    _, b = run(tmp_path, "b", f"platform.root={tmp_path / 'platform-b'}")
    assert (tmp_path / "platform-a" / "platform.db").is_file()
    assert (tmp_path / "platform-b" / "platform.db").is_file()
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    assert read_json(a / "data.json")["content_hash"] == read_json(b / "data.json")["content_hash"]


def test_each_training_run_creates_its_own_model_version(tmp_path, dataloop_home):
    _, first = run(tmp_path, "first", "pipeline=train")
    _, second = run(tmp_path, "second", "pipeline=train")
    one, two = read_json(first / "model.json"), read_json(second / "model.json")

    platform = platform_at(dataloop_home)
    base = platform.get_model(name=resolved(compose_config())["model"]["name"])
    assert base.name == "sklearn-digits"
    assert len({one["id"], two["id"], base.id}) == 3
    assert one["name"] != two["name"]
    assert one["name"].startswith("sklearn-digits-") and two["name"].startswith("sklearn-digits-")
    assert base.artifacts.list() == []
    assert base.status == "created"
    assert len(platform.list_models()) == 3
    for version in (one, two):
        stored = platform.get_model(model_id=version["id"])
        assert stored.status == "trained"
        assert [a.local_path for a in stored.artifacts.list()] == ["model.skops"]


def test_pipeline_cleanup_deletes_the_training_data_copy_and_keeps_the_artifacts(tmp_path, dataloop_home):
    _, kept = run(tmp_path, "kept", "pipeline=train")
    _, cleaned = run(tmp_path, "cleaned", "pipeline=train", "pipeline.cleanup=true")
    platform = platform_at(dataloop_home)
    for out, copies in ((kept, 1), (cleaned, 0)):
        version = read_json(out / "model.json")
        folder = dataloop_home / "model_data" / f"{version['id']}_{version['name']}"
        assert len(list(folder.glob("*/datasets/*/train/json"))) == copies
        stored = platform.get_model(model_id=version["id"])
        assert stored.status == "trained"
        assert [a.local_path for a in stored.artifacts.list()] == ["model.skops"]


# -- bad configs ---------------------------------------------------------------------------------

BAD_CONFIGS = {
    "missing-required-value": (["dataset=image_folder"], ConfigError, ["dataset.name"]),
    "adapter-not-importable": (["adapter._target_=nope.Nope"], ConfigError, ["nope", "adapter._target_", "fix:"]),
    "adapter-class-misspelt": (["adapter._target_=adapters.sklearn_classifier.SklearnImageClassifer"], ConfigError,
                               ["did you mean 'SklearnImageClassifier'?"]),
    "unknown-output-type": (["adapter.output_type=classification"], ConfigError,
                            ["output type 'classification' is not one Dataloop knows", "'class'"]),
    "metric-not-importable": (["metrics.scores.matthews_corrcoef._target_=nope.mcc"], ConfigError,
                              ["nope", "metrics.scores.matthews_corrcoef"]),
    "unknown-input-type": (["adapter.input_type=imgae"], ConfigError,
                           ["input type 'imgae' is not a kind of item", "did you mean image?", "'video'"]),
    "metrics-for-another-output-type": (["model.output_type=box"], ConfigError, ["box", "metrics=detection"]),
    "unknown-step": (["pipeline.steps=[train,fly]"], ConfigError, ["fly", "pipeline.steps"]),
    "empty-subset": (["+subsets.empty={filter:{dir:/nowhere},resource:items}"], EmptySubsetError,
                     ["empty", "/nowhere"]),
    "stored-dataset-misspelt": (["dataset.name=digit", "dataset.source=null"], ConfigError,
                                ["no dataset 'digit' (did you mean dataset.name=digits?)", "runner.store datasets"]),
    # a computed split that leaves a subset empty: the dataset is too small for it (here: a fraction of 0)
    "split-leaves-a-subset-empty": (["subsets=random_split", "subsets.fractions.train=0.85",
                                     "subsets.fractions.test=0.0"], EmptySubsetError,
                                    ["the random split gives subset 'test' no item: dataset 'digits' has 1797 items",
                                     "{train: 0.85, validation: 0.15, test: 0.0}", "subsets.fractions.test"]),
    "subset-filter-unknown-field": (["~subsets.test.filter", "+subsets.test.filter={dri: /test}"], FilterError,
                                    ["unknown items field 'dri'", "where: subsets.test: filter.dri"]),
    "unknown-objective": (["objective.metric=nope_score"], ConfigError, ["nope_score", "objective.metric"]),
    "cleanup-not-a-bool": (["pipeline.cleanup=sometimes"], ConfigError, ["sometimes", "pipeline.cleanup", "true"]),
    "resume-not-a-bool": (["resume=yes"], ConfigError, ["resume is 'yes', not true or false", "resume=true"]),
    "unknown-model-to-evaluate": (["pipeline=evaluate", "model.name=no-such-model"], NotFoundError,
                                  ["no model named 'no-such-model'", "where: model.name",
                                   "(python -m runner.store models lists them), or train one first: a run with "
                                   "pipeline=train (or train_evaluate) and model.name=no-such-model trains a version"]),
    # a version's name, of another store: training under it would make a base model named like a version
    "version-of-another-store": (["pipeline=evaluate", "model.name=sklearn-digits-20261125-151751-95a9"],
                                 NotFoundError, ["no model named 'sklearn-digits-20261125-151751-95a9'",
                                                 "a version lives in the store of the run that trained it: point "
                                                 "DATALOOP_PATH (or platform.root) at that store"]),
    # a batch size of 0 predicted nothing and scored 0.0; the others failed after training
    "batch-size-zero": (["batch_size=0"], ConfigError, ["batch_size is 0", "where: batch_size"]),
    "batch-size-not-a-number": (["batch_size=abc"], ConfigError, ["'abc'", "batch_size=32"]),
    "batch-size-null": (["batch_size=null"], ConfigError, ["None", "batch_size"]),
    "seed-not-whole": (["seed=1.5"], ConfigError, ["seed is 1.5", "seed=0"]),
    "seed-negative": (["seed=-1"], ConfigError, ["seed is -1, not a whole number of at least 0"]),
    # prepare_data would take nothing (no item with an annotation of that type): found before a version is made
    "no-annotations-of-the-output-type": (["adapter.output_type=point", "pipeline=train"], EmptySubsetError,
                                          ["no item of subset 'train' has an annotation", "'point'",
                                           "include_background=true"]),
    "direction-unknown": (["objective.direction=up"], ConfigError, ["'up'", "objective.direction=minimize"]),
    "model-name-escapes": (["model.name=../../elsewhere"], ConfigError, ["'../../elsewhere'", "model.name"]),
    "model-name-empty": (["model.name="], ConfigError, ["model.name is ''"]),
    "dataset-name-escapes": (["dataset.name=../digits"], ConfigError, ["dataset.name is '../digits'"]),
}


@pytest.mark.parametrize(("overrides", "error", "mentions"), BAD_CONFIGS.values(), ids=BAD_CONFIGS)
def test_a_bad_config_raises_a_helpful_error_and_writes_nothing(tmp_path, dataloop_home, overrides, error,
                                                                mentions):
    platform = platform_at(dataloop_home)
    import_digits(platform)
    before = table_counts(platform)
    assert before["items"] == DIGITS_ITEMS

    with pytest.raises(error) as raised:
        run(tmp_path, "run", *overrides)

    message = str(raised.value)
    for mention in mentions:
        assert mention in message, f"{mention!r} not in {message!r}"
    assert table_counts(platform) == before
    # the run folder holds only the record of how it ended (a sweep report reads it)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["run.json"]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "failed" and record["error"]["type"] == error.__name__


@pytest.mark.parametrize(("overrides", "metrics"), [
    (["adapter=shapes_detector"], "box"),  # the adapter option's own choice
    (["adapter=shapes_segmenter"], "segment"),
    (["adapter=shapes_detector", "metrics=minimal"], "class"),  # the command line's wins
    (["experiment=shapes_detection"], "box"),
    ([], "class"),
])
def test_an_adapter_option_chooses_the_metrics_set_of_its_outputs(overrides, metrics):
    assert compose_config(*overrides).metrics.output_type == metrics


def test_a_version_of_a_version_gets_a_fresh_suffix_not_a_second_one():
    first = version_name("torch-cnn-digits")
    again = version_name(first)
    pattern = r"torch-cnn-digits-\d{8}-\d{6}-[0-9a-f]{4}"
    assert re.fullmatch(pattern, first) and re.fullmatch(pattern, again)
    assert version_name("my-model-v2").startswith("my-model-v2-")


def test_a_folder_source_compares_as_the_folder_it_names_not_as_text(tmp_path, monkeypatch):
    """``photos``, ``./photos/`` and the absolute path are one folder; ``photos`` seen from another
    working folder is another one, and is refused."""
    from PIL import Image

    for where in ("a", "b"):
        for label in ("cat", "dog"):
            (tmp_path / where / "photos" / label).mkdir(parents=True)
            Image.new("RGB", (4, 4), (200 if label == "cat" else 20,) * 3).save(tmp_path / where / "photos" / label / "0.png")
    platform = LocalPlatform(tmp_path / "platform")

    def spec(folder: str) -> dict:
        return {"name": "photos", "source": {"_target_": "runner.data.import_image_folder", "folder": folder,
                                             "dataset_name": "photos"}}

    monkeypatch.chdir(tmp_path / "a")
    first = app._dataset(platform, spec("photos"))
    assert platform.import_source(first)["folder"] == str((tmp_path / "a" / "photos").resolve())
    for same in ("./photos/", str(tmp_path / "a" / "photos")):
        assert app._dataset(platform, spec(same)).id == first.id
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(ConfigError, match="dataset.source asks for folder="):
        app._dataset(platform, spec("photos"))


def test_a_model_label_the_dataset_lacks_is_refused_before_a_version_is_made(platform, digits, tmp_path):
    """No item would train or score it: a misspelling, refused before the base model or a version is
    made (the adapter would otherwise meet ground truth of a label its model lacks)."""
    settings = {"adapter": {"configuration": {}}, "model": {
        "name": "misspelt", "labels": [*(str(d) for d in range(9)), "nine", "08"], "input_type": "image",
        "output_type": "class", "configuration": {}}}
    with pytest.raises(ConfigError) as err:
        app._model(platform, digits, settings, ["train"], {}, tmp_path)
    assert err.value.what.startswith("model.labels names 'nine', '08' (did you mean 8?), which dataset 'digits' does "
                                     "not have (it has 0, 1, 2"), err.value.what
    assert err.value.where == "model.labels" and "model.labels=null" in err.value.fix
    assert platform.find_model("misspelt") is None
    settings["model"]["labels"] = ["3", "5"]  # some of the dataset's labels: a model of those
    assert app._model(platform, digits, settings, ["train"], {}, tmp_path).labels == ["3", "5"]


def test_a_training_run_on_a_misspelt_version_name_is_refused_before_it_makes_a_new_base_model(
        platform, digits, caplog, tmp_path):
    import logging

    def settings(name):
        return {"adapter": {"configuration": {}}, "model": {"name": name, "labels": None, "input_type": "image",
                                                            "output_type": "class", "configuration": {}}}

    version = app._model(platform, digits, settings("sklearn-digits"), ["train"], {}, tmp_path)
    typo = version.name[:-1]  # the last character dropped
    models = len(platform.list_models())
    with pytest.raises(ConfigError) as err:
        app._model(platform, digits, settings(typo), ["train"], {}, tmp_path)
    assert f"(did you mean model.name={version.name}?)" in err.value.what and err.value.where == "model.name"
    assert len(platform.list_models()) == models  # nothing made
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="runner.app"):
        app._model(platform, digits, settings("sklearn-digits2"), ["train"], {}, tmp_path)  # a new base model
    assert "did you mean" not in caplog.text


def test_only_the_config_files_a_run_may_read_are_checked_for_yaml_errors(tmp_path):
    """A broken draft in an option the run does not choose stops nothing; one the run chooses, directly
    or through a chosen file's defaults list, is named."""
    from runner.argv_checks import config_file_problem

    (tmp_path / "adapter").mkdir()
    (tmp_path / "experiment").mkdir()
    (tmp_path / "adapter" / "mine.yaml").write_text("_target_: a.B\nname: mine\n")
    (tmp_path / "adapter" / "draft.yaml").write_text("name: [draft\n")
    (tmp_path / "experiment" / "uses_draft.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /adapter: draft\n")
    folder = f"hydra.searchpath=[file://{tmp_path}]"
    assert config_file_problem([folder, "adapter=mine"]) is None
    assert config_file_problem([folder]) is None  # the default adapter, sklearn, is not in this folder
    for argv in ([folder, "adapter=draft"], [folder, "-m", "adapter=mine,draft"], [folder, "experiment=uses_draft"],
                 [folder, "-m", "adapter=glob(*)"], ["--config-dir", str(tmp_path), "adapter=draft"]):
        problem = config_file_problem(argv)
        assert problem and problem.startswith("a config file is not valid YAML") and \
            f"where: {tmp_path / 'adapter' / 'draft.yaml'}, line 2" in problem, (argv, problem)


def test_a_step_the_adapter_lacks_names_the_shipped_pipelines_it_runs():
    """The embedder has no predict: the default train_evaluate is refused, and the fix names train and embed."""
    with pytest.raises(ConfigError) as refused:
        run_plan.plan(compose_config("adapter=pca_embedder"))
    assert "the evaluate step needs the user function 'predict'" in str(refused.value)
    assert refused.value.fix.endswith("PcaEmbedder runs pipeline=embed, pipeline=train")


@pytest.mark.parametrize("override, says, fix", [
    ("pipeline.steps=train", "pipeline.steps is the string 'train', not a list of steps", "pipeline.steps=[train]"),
    ("adapter.configuration=5", "adapter.configuration is 5, not a mapping of settings", "keys and values"),
    ("model.configuration=7", "model.configuration is 7, not a mapping of settings", "keys and values")])
def test_a_value_of_the_wrong_shape_is_refused_with_its_key(override, says, fix):
    with pytest.raises(ConfigError) as refused:
        run_plan.plan(compose_config(override))
    assert refused.value.what == says and fix in refused.value.fix


@pytest.mark.parametrize("fractions, says", [({"train": "seventy", "test": 0.3}, "fraction 'train' is 'seventy'"),
                                             ({"train": True}, "fraction 'train' is True"),
                                             ([0.7, 0.3], "must be non-negative and sum to 1, got [0.7, 0.3]")])
def test_random_split_fractions_that_are_not_numbers_are_a_config_error(fractions, says):
    from runner.subsets import random_split

    with pytest.raises(ConfigError, match=re.escape(says)):
        random_split(None, None, 0, fractions)


def test_a_mapping_given_a_list_on_the_command_line_gets_a_hint_to_set_its_keys():
    from runner.argv_checks import misspelt_key_hint

    hint = misspelt_key_hint(["adapter.configuration.estimator=[1,2]"])
    assert hint == ("hint: adapter.configuration.estimator is a mapping (_target_, C, max_iter), not a single value "
                    "or list: set its keys one by one (adapter.configuration.estimator.C=<value>; "
                    "++adapter.configuration.estimator.<new key>=<value> adds one), or replace it whole: "
                    "'~adapter.configuration.estimator' '+adapter.configuration.estimator={C: <value>, ...}'")
    assert misspelt_key_hint(["adapter.configuration.estimator.C=2"]) is None  # a key it has, of its shape


def test_a_top_level_key_an_experiment_file_misspells_is_named_in_a_warning(tmp_path, caplog):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "e3.yaml").write_text("# @package _global_\nbatchsize: 16\nmy_rate: 0.1\n")
    cfg = compose_config(f"hydra.searchpath=[file://{tmp_path}]", "experiment=e3")
    with caplog.at_level(logging.WARNING, logger="runner"):
        run_plan.plan(cfg)
    assert "the config has a top-level key batchsize, which nothing reads (did you mean batch_size?); batch_size " \
           "keeps its value" in caplog.text
    assert "my_rate" not in caplog.text  # a key of your own, not a near miss: left alone


def test_an_experiment_that_overrides_groups_without_its_package_line_is_named_before_hydra(tmp_path):
    from runner.argv_checks import config_file_problem

    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "e1.yaml").write_text("defaults:\n  - override /dataset: digits\nbatch_size: 16\n")
    folder = f"hydra.searchpath=[file://{tmp_path}]"
    problem = config_file_problem([folder, "experiment=e1"])
    assert problem.startswith("experiment/e1.yaml overrides other groups in its defaults list, but lacks the line "
                              f"'# @package _global_', which must come first\n  where: {tmp_path / 'experiment'}"), problem
    (tmp_path / "experiment" / "e1.yaml").write_text("# @package _global_\n" + (tmp_path / "experiment" / "e1.yaml")
                                                     .read_text())
    assert config_file_problem([folder, "experiment=e1"]) is None
    cfg = compose_config(folder, "experiment=e1")  # and Hydra takes it so
    assert cfg.batch_size == 16


def test_an_empty_subsets_fix_names_a_dir_without_its_leading_slash():
    assert app._slash_hint({"filter": {"$and": [{"hidden": False}, {"dir": "test"}]}}) == \
        "; dir values start with '/' (dir: /test, not test)"
    assert app._slash_hint({"filter": {"filename": {"$in": ["a.png"]}}}) == \
        "; filename values start with '/' (filename: /a.png, not a.png)"
    assert app._slash_hint({"filter": {"$or": [{"dir": "/test"}, {"dir": "/test/*"}], "name": "x"}}) == ""


def test_a_run_that_uses_a_version_is_refused_where_there_is_no_store_and_makes_none(tmp_path, dataloop_home):
    nowhere = tmp_path / "locl"  # a misspelt platform.root
    with pytest.raises(ConfigError) as refused:
        run(tmp_path, "evaluate", "pipeline=evaluate", "model.name=sklearn-digits-v", f"platform.root={nowhere}")
    assert refused.value.what == f"there is no local platform at {nowhere}, so no model version " \
                                 "'sklearn-digits-v' to evaluate with"
    assert "platform.root" in refused.value.where and "pipeline=train" in refused.value.fix
    assert not nowhere.exists()


def test_a_job_a_stop_signal_reached_before_it_began_is_recorded_as_not_started(tmp_path, monkeypatch):
    """A launcher's worker told to stop takes no further job: the one it is handed says it never began."""
    import signal

    from runner import interrupts
    from runner.sweep_table import read_job

    monkeypatch.setattr(interrupts, "_stopping", signal.SIGINT)
    with pytest.raises(interrupts.Terminated):
        app.run(compose_config(), tmp_path / "3")
    record = read_json(tmp_path / "3" / "run.json")
    assert (record["status"], record["model"], record["error"]) == (
        "not started", None, {"type": "KeyboardInterrupt", "message": "stopped by SIGINT before it began"})
    assert read_job(tmp_path / "3").status == "not started"


def test_only_a_resume_hydra_reads_as_true_lets_a_sweep_into_a_folder_of_earlier_jobs(tmp_path):
    """resume=yes or =1 is no bool: the run would not resume and would clear the completed jobs' outputs."""
    from runner.argv_checks import sweep_dir_problem

    (tmp_path / "sw" / "0" / ".hydra").mkdir(parents=True)
    grid = ["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sw'}"]
    for given in ("resume=true", "resume=True"):
        assert sweep_dir_problem([*grid, given]) is None
    for given in ("resume=yes", "resume=1", "resume=false"):
        assert "holds the job folders of an earlier sweep (0)" in sweep_dir_problem([*grid, given])
