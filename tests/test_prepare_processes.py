"""``configuration.prepare_in: processes``: prepare_item_func on worker processes, with the results,
the failure reports and the store writes of the thread pipeline."""

from __future__ import annotations

import inspect
import os

import pytest

from adapters.sklearn_classifier import SklearnImageClassifier
from runner.errors import ConfigError, PredictionError
from tests.digits_subsets import SUBSETS
from tests.sample_adapters import PrepareReportsWhere
from tests.test_sharding import _predictions


def _adapter(platform, dataset, cls, name: str, **configuration):
    model = platform.create_model(name, dataset, labels=[str(d) for d in range(10)],
                                  configuration={"batch_size": 8, **configuration}, subsets=SUBSETS)
    adapter = cls()
    adapter.platform = platform
    adapter.model_entity = model
    adapter.save_to_model(replace=True)  # the artifacts a worker process loads
    adapter.load_from_model(model_entity=platform.get_model(model.id))
    return adapter


def _test_items(platform, digits, n: int) -> list:
    return [item for page in platform.iter_items(digits, SUBSETS["test"]) for item in page][:n]


def _failed_run(platform, digits, items: list, **configuration) -> PredictionError:
    """``predict_items(items)`` on prepare processes (unless ``prepare_in`` says threads), with
    ``PrepareReportsWhere`` configured so: its error."""
    adapter = _adapter(platform, digits, PrepareReportsWhere, "where", **{"prepare_in": "processes", **configuration})
    try:
        with pytest.raises(PredictionError) as err:
            adapter.predict_items(items)
    finally:
        adapter.batch_runner.close()
    return err.value


def test_processes_store_what_threads_store(platform, digits):
    model = platform.create_model("digits-lr", digits, configuration={"batch_size": 16}, subsets=SUBSETS)
    trainer = SklearnImageClassifier()
    trainer.platform = platform
    trainer.train_model(model)
    model = platform.get_model(model.id)

    threads = SklearnImageClassifier()
    threads.platform = platform
    threads.load_from_model(model_entity=model)
    assert threads.predict_dataset(digits, filters=SUBSETS["test"]) == 269
    on_threads = _predictions(platform, digits, model)
    threads.batch_runner.close()

    model.configuration["prepare_in"] = "processes"
    processes = SklearnImageClassifier()
    processes.platform = platform
    processes.load_from_model(model_entity=model)
    try:
        assert processes.predict_dataset(digits, filters=SUBSETS["test"]) == 269  # a rerun: replaces
        assert processes.batch_runner._processes is not None
    finally:
        processes.batch_runner.close()
    assert _predictions(platform, digits, model) == on_threads
    assert platform.store.count_annotations(digits.id, model.name) == 269


def test_prepare_runs_in_other_processes_on_the_loaded_adapter(platform, digits):
    adapter = _adapter(platform, digits, PrepareReportsWhere, "where", prepare_in="processes", prepare_workers=2)
    items = _test_items(platform, digits, 40)
    try:
        _items, annotations = adapter.predict_items(items)
    finally:
        adapter.batch_runner.close()
    assert len(annotations) == 40
    pids = {int(a.label.split("/")[0]) for a in annotations}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # prepared elsewhere, on at most 2 workers
    # each worker loaded the model from its artifacts, and read the item's bytes from the store
    assert {a.label.split("/", 1)[1] for a in annotations} == {"from-artifacts/8x8"}


def test_a_failure_in_a_worker_is_reported_per_item_at_the_adapter_line(platform, digits):
    items = _test_items(platform, digits, 24)
    bad = [items[2].name, items[13].name]
    err = _failed_run(platform, digits, items, fail_names=bad)
    assert set(err.failed) == {items[2].id, items[13].id}
    assert err.failed[items[2].id] == f"prepare_item_func: ValueError: cannot prepare {bad[0]} ..."
    message = str(err)
    assert "sample_adapters.py" in message and "in prepare_item_func" in message
    assert "second line of the message" in message  # the whole first failure, once
    assert 'raise ValueError(f"cannot prepare' in err.traceback_text  # the worker's traceback
    assert platform.store.count_annotations(digits.id, "where") == 22


@pytest.mark.parametrize("prepare_in", ["threads", "processes"])
def test_a_prepare_item_func_that_returns_none_fails_those_items_alone(platform, digits, prepare_in):
    """A None among a batch's inputs would fail the whole batch in predict (np.stack, torch.stack), with a
    message that names neither the item nor prepare_item_func: the item fails, named with the line of
    prepare_item_func, and the rest of its batch is predicted and stored."""
    items = _test_items(platform, digits, 24)
    nones = [items[2], items[13]]
    err = _failed_run(platform, digits, items, prepare_in=prepare_in, none_names=[item.name for item in nones])
    line = inspect.getsourcelines(PrepareReportsWhere.prepare_item_func)[1]
    at = f"{inspect.getsourcefile(PrepareReportsWhere)}:{line} in PrepareReportsWhere.prepare_item_func"
    assert err.failed == {item.id: f"TypeError: prepare_item_func returned None for item {item.id} ({at}): it must "
                                   "return the item's input to predict; raise an exception to fail an item"
                          for item in nones}
    assert f"the first failure was raised at {at} (what it returned)" in str(err)
    assert platform.store.count_annotations(digits.id, "where") == 22


def test_a_worker_that_dies_fails_its_items_and_the_run_ends(platform, digits):
    items = _test_items(platform, digits, 24)
    err = _failed_run(platform, digits, items, exit_name=items[10].name)
    assert items[10].id in err.failed
    assert "a prepare worker process ended abruptly" in err.failed[items[10].id]
    assert "raised at a prepare worker process" in str(err)
    # every item is stored or reported failed (which batches a dead worker takes with it depends on timing)
    assert platform.store.count_annotations(digits.id, "where") == 24 - len(err.failed)


def test_an_unknown_prepare_in_is_a_config_error(platform, digits):
    adapter = _adapter(platform, digits, PrepareReportsWhere, "where", prepare_in="fork")
    with pytest.raises(ConfigError, match="prepare_in") as err:
        adapter.predict_items([])
    assert "configuration.prepare_in" in str(err.value) and "processes" in str(err.value)


def test_a_class_a_worker_cannot_import_is_a_config_error(platform, digits):
    class Local(PrepareReportsWhere):
        pass

    adapter = _adapter(platform, digits, Local, "where", prepare_in="processes")
    items = _test_items(platform, digits, 4)
    with pytest.raises(ConfigError, match="worker process can import") as err:
        adapter.predict_items(items)
    assert "Local" in str(err.value) and "prepare_in: threads" in str(err.value)
    assert platform.store.count_annotations(digits.id, "where") == 0


def test_a_dataloop_style_class_embeds_on_prepare_processes(platform, digits):
    """A class written against dl.BaseModelAdapter is bound again in each worker process."""
    from runner import bind_adapter_class
    from tests.sample_adapters import CentroidAdapter

    items = _test_items(platform, digits, 20)
    vectors = {}
    for prepare_in in ("threads", "processes"):
        model = platform.create_model(f"centroid-{prepare_in}", digits, configuration={"prepare_in": prepare_in},
                                      subsets=SUBSETS)
        adapter = bind_adapter_class(CentroidAdapter)()
        adapter.platform = platform
        adapter.load_from_model(model_entity=model)
        try:
            embedded, vectors[prepare_in] = adapter.embed_items(items)
            assert [i.id for i in embedded] == [i.id for i in items]
            assert (adapter.batch_runner._processes is not None) == (prepare_in == "processes")
        finally:
            adapter.batch_runner.close()
    assert len(vectors["processes"]) == 20
    for on_threads, on_processes in zip(vectors["threads"], vectors["processes"], strict=True):
        assert list(on_threads) == list(on_processes)


def _prepare_in_a_pool_worker(root: str, model_id: str) -> tuple[bool, int]:
    import logging

    from runner.platform.local import LocalPlatform

    platform = LocalPlatform(root)
    adapter = PrepareReportsWhere()
    adapter.platform = platform
    adapter.load_from_model(model_entity=platform.get_model(model_id=model_id))
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("runner").addHandler(handler)
    items = [item for page in platform.iter_items(adapter.model_entity.dataset, SUBSETS["test"]) for item in page][:8]
    _items, annotations = adapter.predict_items(items)
    warned = any("preparing on threads here" in record.getMessage() for record in records)
    return warned, len({a.label.split("/")[0] for a in annotations} - {str(os.getpid())})


def test_in_a_pool_worker_prepare_stays_on_threads_with_a_warning(platform, digits):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    adapter = _adapter(platform, digits, PrepareReportsWhere, "where", prepare_in="processes")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        warned, prepared_elsewhere = pool.submit(_prepare_in_a_pool_worker, str(platform.root),
                                                 adapter.model_entity.id).result(timeout=120)
    assert warned and prepared_elsewhere == 0  # prepared in the worker itself, on its threads


def test_a_model_that_does_not_load_in_the_workers_fails_every_item_with_the_cause(platform, digits):
    items = _test_items(platform, digits, 24)
    err = _failed_run(platform, digits, items, fail_load_in_workers=True)
    assert set(err.failed) == {item.id for item in items}
    assert set(err.failed.values()) == {
        "prepare_item_func: the prepare worker could not load the model: RuntimeError: this load runs in the main "
        "process only"}
    assert "nothing was stored" in str(err) and "in load" in str(err)
    assert platform.store.count_annotations(digits.id, "where") == 0


def test_a_value_that_cannot_travel_back_says_what_prepare_item_func_must_return(platform, digits):
    items = _test_items(platform, digits, 8)
    err = _failed_run(platform, digits, items, return_generator=True)
    assert set(err.failed) == {item.id for item in items}
    cause = err.failed[items[0].id]
    assert "what prepare_item_func returned could not be sent back from its worker process" in cause
    assert "generator" in cause and "must return values that pickle" in cause


def test_a_class_of_an_interactive_session_is_a_config_error(tmp_path):
    """python - (standard input), python -c and notebooks have a __main__ no worker process can import."""
    import subprocess
    import sys

    script = f"""
import os
os.environ["DATALOOP_PATH"] = {str(tmp_path / "dl")!r}
from runner.data import import_digits
from runner.platform.local import LocalPlatform
from runner.errors import ConfigError
from tests.sample_adapters import PrepareReportsWhere

class Interactive(PrepareReportsWhere):
    pass

platform = LocalPlatform({str(tmp_path / "platform")!r})
dataset = import_digits(platform).dataset
model = platform.create_model("where", dataset, configuration={{"prepare_in": "processes"}})
adapter = Interactive()
adapter.platform = platform
adapter.model_entity = model
adapter.save_to_model(replace=True)
adapter.load_from_model(model_entity=platform.get_model(model.id))
items = next(iter(platform.iter_items(dataset, None, 4)))
try:
    adapter.predict_items(items)
except ConfigError as err:
    print("CONFIG ERROR:", err)
"""
    result = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=300,
                            cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert "CONFIG ERROR: prepare_in=processes needs an adapter class a worker process can import; " \
           "__main__.Interactive is not: it is defined in an interactive session" in result.stdout, result.stderr
