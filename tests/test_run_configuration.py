"""A version's configuration changed for one run: the run sees the change, the store never does,
not even when the adapter writes a configuration key back during that run; shard workers see it too."""

from __future__ import annotations

from runner import bind_adapter_class
from runner.configuration import ModelConfiguration
from runner.data import import_digits
from runner.run_configuration import apply_for_this_run, carried, changed_for_this_run, given_keys, shown
from runner.sharding import loaded_adapter
from tests.digits_subsets import SUBSETS
from tests.sample_adapters import CentroidAdapter

TRAINED = {"min_score": 0.05, "classifier": {"depth": 3, "trees": 100}, "batch_size": 32}


def test_given_keys_are_the_configuration_overrides_of_the_command_line():
    overrides = ["pipeline=evaluate", "adapter.configuration.min_score=0.9", "+model.configuration.extra=1",
                 "~adapter.configuration.classifier.depth", "batch_size=8", "adapter=shapes_detector"]
    assert given_keys(overrides) == [("min_score", False), ("extra", False), ("classifier.depth", True)]


def test_the_run_sees_its_changes_and_the_store_keeps_the_versions_own(platform):
    dataset = import_digits(platform).dataset
    model = platform.create_model("m", dataset, configuration=TRAINED, subsets=SUBSETS)
    composed = {"min_score": 0.9, "classifier": {"depth": 5, "trees": 7}, "extra": "x"}
    changes = apply_for_this_run(model, composed, [("min_score", False), ("classifier.depth", False),
                                                   ("extra", False), ("batch_size", True)])
    assert {key: (shown(before), shown(after)) for key, (before, after) in changes.items()} == {
        "min_score": ("0.05", "0.9"), "classifier.depth": ("3", "5"), "extra": ("<not set>", "'x'"),
        "batch_size": ("32", "<not set>")}
    # nested: only the leaf given changes (trees stays the version's 100, not the composed 7)
    assert model.configuration == {"min_score": 0.9, "classifier": {"depth": 5, "trees": 100}, "extra": "x"}
    assert changed_for_this_run(model) == {"min_score": 0.9, "classifier.depth": 5, "extra": "x", "batch_size": None}

    # the adapter writes a key back during the run (through self.configuration, or model.update())
    configuration = ModelConfiguration(model)
    configuration["label_map"] = {"0": 0}
    assert configuration["min_score"] == 0.9  # the run still sees its value
    stored = platform.get_model(model.id).configuration
    assert stored == {**TRAINED, "label_map": {"0": 0}}
    model.configuration["written"] = True
    model.update()
    assert platform.get_model(model.id).configuration == {**TRAINED, "label_map": {"0": 0}, "written": True}
    assert model.configuration["classifier"] == {"depth": 5, "trees": 100}


def test_a_shard_worker_loads_the_version_with_the_runs_changes(platform):
    dataset = import_digits(platform).dataset
    model = platform.create_model("centroids", dataset, configuration={"pixel_scale": 255.0}, subsets=SUBSETS)
    trainer = bind_adapter_class(CentroidAdapter)(model_entity=model)
    trainer.train_model(model)
    model = platform.get_model(model.id)
    apply_for_this_run(model, {"pixel_scale": 16.0}, [("pixel_scale", False)])
    worker = loaded_adapter(platform, CentroidAdapter, model.id, "", this_run=carried(model))
    assert worker.configuration["pixel_scale"] == 16.0
    assert changed_for_this_run(worker.model_entity) == {"pixel_scale": 16.0}
    # another run's worker in the same process, without changes, gets its own adapter
    plain = loaded_adapter(platform, CentroidAdapter, model.id, "")
    assert plain is not worker and plain.configuration["pixel_scale"] == 255.0
    assert platform.get_model(model.id).configuration["pixel_scale"] == 255.0
