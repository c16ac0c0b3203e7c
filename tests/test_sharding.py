"""Sharded predict_dataset: page-range shards on worker processes (and Ray tasks) store exactly what
one process stores, never duplicate, and report every failed item id."""

from __future__ import annotations

import gc

import pytest

from adapters.sklearn_classifier import SklearnImageClassifier
from runner.data import import_digits
from runner.errors import ConfigError, PredictionError
from runner.sharding import Sharding, ShardTask, plan_shards, run_shard
from tests.digits_subsets import SUBSETS
from tests.sample_adapters import ConfiguredFlakyAdapter

ALL_BUT_TEST = {"filter": {"dir": {"$ne": "/test"}}}


@pytest.mark.parametrize("count, workers", [(1797, 2), (1797, 3), (20000, 2), (7, 4), (1, 2), (500, 1), (4001, 8)])
def test_shards_cover_every_page_once_and_shrink_to_one_page(count, workers):
    page_size, shards = plan_shards(count, workers)
    assert 1 <= page_size <= 500
    pages = [p for shard in shards for p in shard]
    assert pages == list(range(-(-count // page_size)))  # contiguous, in order, each page once
    sizes = [len(shard) for shard in shards]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 1  # big shards first, one page last
    assert len(shards) >= min(workers, len(pages))  # every worker gets work
    left = len(pages)
    for size in sizes:  # each shard is a share of what is left: a quarter of it for two workers
        assert size == -(-left // (2 * workers))
        left -= size


def test_no_items_no_shards():
    assert plan_shards(0, 2)[1] == []


def _spans(platform, dataset, filters, page_size, shards) -> list[tuple]:
    """The (after, through) cuts around each shard, decided once, as ``run_in_shards`` does."""
    cuts = platform.listing_cuts(dataset, filters, [pages.start * page_size for pages in shards[1:]])
    return list(zip([None, *cuts], [*cuts, None], strict=True))


@pytest.mark.parametrize("over", ["local", "dtlpy"])
def test_spans_of_a_filtered_listing_partition_it(platform, over):
    from runner.platform.dataloop import DataloopPlatform

    dataset = import_digits(platform).dataset
    listing = platform if over == "local" else DataloopPlatform(project=platform.project)
    whole = [item.id for page in listing.iter_items(dataset, ALL_BUT_TEST, 100) for item in page]
    page_size, shards = plan_shards(len(whole), 3)
    parts = [[item.id for page in listing.iter_items(dataset, ALL_BUT_TEST, page_size, span) for item in page]
             for span in _spans(listing, dataset, ALL_BUT_TEST, page_size, shards)]
    assert [i for part in parts for i in part] == whole
    assert [len(part) for part in parts] == [min(len(s) * page_size, len(whole) - s.start * page_size) for s in shards]
    # cuts past the end (the matching set shrank after it was counted) give empty shards, no repeats
    cuts = listing.listing_cuts(dataset, ALL_BUT_TEST, [len(whole) + page_size, len(whole) + 2 * page_size])
    assert list(listing.iter_items(dataset, ALL_BUT_TEST, page_size, (cuts[0], cuts[1]))) == []


def test_spans_stay_put_when_earlier_items_leave_the_filter(platform):
    """The cuts are keys of the listing, not positions: items of the first shard that lose their
    annotations (as predictions make items leave an "annotated: false" filter, the other way
    round) leave the later shards' items as they were."""
    dataset = import_digits(platform).dataset
    annotated = {"filter": {"$and": [{"dir": "/test"}, {"annotated": True}]}}
    whole = [item for page in platform.iter_items(dataset, annotated) for item in page]
    page_size, shards = plan_shards(len(whole), 2)
    spans = _spans(platform, dataset, annotated, page_size, shards)
    before = [[i.id for page in platform.iter_items(dataset, annotated, page_size, s) for i in page] for s in spans]
    for item in whole[:len(before[0])]:
        item.annotations.delete(filters={"filter": {}, "resource": "annotations"})
    after = [[i.id for page in platform.iter_items(dataset, annotated, page_size, s) for i in page] for s in spans]
    assert after == [[], *before[1:]]


def _predictions(platform, dataset, model) -> dict[str, tuple]:
    ours = {"filter": {"metadata.system.model.name": model.name}, "resource": "annotations"}
    found = {}
    for page in platform.iter_items(dataset, None, 500):
        for item_id, stored in platform.annotations_of(page, ours).items():
            found[item_id] = sorted((a["label"], a["type"], round(a["metadata"]["system"]["model"]["confidence"], 12))
                                    for a in stored)
    return found


@pytest.fixture
def trained(platform):
    dataset = import_digits(platform).dataset
    model = platform.create_model("digits-lr", dataset, configuration={"batch_size": 16}, subsets=SUBSETS)
    adapter = SklearnImageClassifier()
    adapter.platform = platform
    adapter.train_model(model)
    return dataset, platform.get_model(model.id)


def test_two_worker_processes_store_what_one_process_stores(platform, trained):
    dataset, model = trained
    adapter = SklearnImageClassifier()
    adapter.platform = platform
    adapter.load_from_model(model_entity=model)

    assert adapter.predict_dataset(dataset, filters=ALL_BUT_TEST) == 1528
    single = _predictions(platform, dataset, model)
    assert sum(len(v) for v in single.values()) == 1528

    adapter.sharding = Sharding(workers=2)
    assert adapter.predict_dataset(dataset, filters=ALL_BUT_TEST) == 1528  # a rerun: replaces, never adds
    sharded = _predictions(platform, dataset, model)
    assert sharded == single
    assert platform.store.count_annotations(dataset.id, model.name) == 1528
    # the keyword overrides the adapter's setting; the test items were not predicted before
    assert adapter.predict_dataset(dataset, filters=SUBSETS["test"], workers=3) == 269
    assert platform.store.count_annotations(dataset.id, model.name) == 1528 + 269


def test_a_worker_shard_leaves_the_heap_frozen_and_the_next_shard_still_runs(platform, trained):
    dataset, model = trained
    page_size, shards = plan_shards(platform.count_items(dataset, SUBSETS["test"]), 2)
    spans = _spans(platform, dataset, SUBSETS["test"], page_size, shards)
    tasks = [ShardTask(platform, SklearnImageClassifier, model.id, dataset.id, SUBSETS["test"], pages, span, page_size,
                       16, 1, "", {}) for pages, span in zip(shards[:2], spans, strict=False)]
    try:
        assert run_shard(tasks[0]).processed == page_size * len(tasks[0].pages)
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # a worker that exits now skips the collector's pass over them
        assert gc.isenabled()
        gc.collect()
        # still out of the collector's reach until the next shard; objects freed by reference count
        # (a finished helper thread's frames) leave the frozen set, so a few may go
        assert gc.get_freeze_count() >= frozen * 0.99
        result = run_shard(tasks[1])
        assert (result.processed, result.failed, result.first) == (page_size * len(tasks[1].pages), {}, None)
        assert platform.store.count_annotations(dataset.id, model.name) == page_size * (len(tasks[0].pages) + len(tasks[1].pages))
    finally:
        gc.unfreeze()


def test_a_filter_the_predictions_change_is_predicted_whole_by_two_workers(platform, trained):
    """"Predict what nobody annotated yet": each shard's predictions take its items out of the
    filter, so shards cut by position as they start would begin past items no shard predicts."""
    dataset, model = trained
    test_items = [item for page in platform.iter_items(dataset, SUBSETS["test"]) for item in page]
    for item in test_items:  # the test items lose their ground truth
        item.annotations.delete(filters={"filter": {}, "resource": "annotations"})
    unannotated = {"filter": {"$and": [{"dir": "/test"}, {"annotated": False}]}}
    assert platform.count_items(dataset, unannotated) == len(test_items) == 269
    adapter = SklearnImageClassifier()
    adapter.platform = platform
    adapter.load_from_model(model_entity=model)

    assert adapter.predict_dataset(dataset, filters=unannotated, workers=2) == 269
    predicted = _predictions(platform, dataset, model)
    assert {item_id for item_id, stored in predicted.items() if stored} == {item.id for item in test_items}
    assert all(len(stored) == 1 for stored in predicted.values() if stored)  # each predicted once
    assert platform.store.count_annotations(dataset.id, model.name) == 269
    assert platform.count_items(dataset, unannotated) == 0


def test_failed_items_of_every_shard_are_reported_and_the_rest_stored(platform):
    dataset = import_digits(platform).dataset
    items = [item for page in platform.iter_items(dataset, SUBSETS["test"], 500) for item in page]
    bad = [items[3], items[200]]  # one in each of two shards
    model = platform.create_model("flaky", dataset, configuration={"batch_size": 4, "fail_names": [i.name for i in bad]},
                                  subsets=SUBSETS)
    adapter = ConfiguredFlakyAdapter()
    adapter.platform = platform
    adapter.model_entity = model  # the model needs artifacts to load from
    adapter.save_to_model(replace=True)
    adapter.load_from_model(model_entity=platform.get_model(model.id))

    with pytest.raises(PredictionError) as err:
        adapter.predict_dataset(dataset, filters=SUBSETS["test"], workers=2)
    failed = set(err.value.failed)
    # a failing item takes its batch of 4 with it; a shard's batches start at the shard's first item
    page_size, shards = plan_shards(len(items), 2)
    for item in bad:
        index = items.index(item)
        [shard] = [s for s in shards if s.start * page_size <= index < s.stop * page_size]
        start = shard.start * page_size + (index - shard.start * page_size) // 4 * 4
        assert {i.id for i in items[start:start + 4]} <= failed
    assert len(failed) == 8
    assert "cannot predict" in err.value.failed[bad[1].id]
    assert "269" in str(err.value)
    assert platform.store.count_annotations(dataset.id, "flaky") == 269 - 8


@pytest.mark.parametrize("workers", [0, -2, True, 1.5, "2"])
def test_bad_sharding_settings_are_config_errors(workers):
    with pytest.raises(ConfigError, match="workers"):
        Sharding(workers=workers)
    with pytest.raises(ConfigError, match="backend"):
        Sharding(workers=2, backend="threads")


@pytest.mark.xdist_group("ray")  # one local Ray at a time on the machine
def test_ray_tasks_store_what_one_process_stores(platform, trained):
    ray = pytest.importorskip("ray")
    dataset, model = trained
    adapter = SklearnImageClassifier()
    adapter.platform = platform
    adapter.load_from_model(model_entity=model)
    assert adapter.predict_dataset(dataset, filters=SUBSETS["validation"]) == 270
    single = _predictions(platform, dataset, model)

    adapter.sharding = Sharding(workers=2, backend="ray")
    try:
        assert adapter.predict_dataset(dataset, filters=SUBSETS["validation"]) == 270
    finally:
        ray.shutdown()
    assert _predictions(platform, dataset, model) == single
    assert platform.store.count_annotations(dataset.id, model.name) == 270


def test_this_process_and_the_remote_workers_share_the_shards():
    """The dispatcher over a real thread pool as the remote side: every task runs once, on one
    side or the other, outcomes keep the tasks' order, and a failure stays with its task."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from runner.sharding import _dispatch

    ran: dict[int, str] = {}
    lock = threading.Lock()

    def work(side: str):
        def run(task: int):
            time.sleep(0.01)
            with lock:
                assert task not in ran
                ran[task] = side
            if task == 7:
                raise RuntimeError("task 7 fails")
            return task * 10
        return run

    with ThreadPoolExecutor(2) as pool:
        remote = work("remote")
        outcomes = _dispatch(list(range(30)), work("here"), lambda task: pool.submit(remote, task), 2)
    assert sorted(ran) == list(range(30))
    assert set(ran.values()) == {"here", "remote"}
    assert [o for i, o in enumerate(outcomes) if i != 7] == [i * 10 for i in range(30) if i != 7]
    assert isinstance(outcomes[7], RuntimeError)

    def refuse(task):
        raise RuntimeError("the pool is broken")

    # a remote side that cannot take work: this process runs every task itself
    assert _dispatch([1, 2, 3], lambda task: task * 2, refuse, 1) == [2, 4, 6]


def test_the_shards_of_a_worker_that_died_come_back_to_this_process():
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from runner.sharding import _dispatch

    def dies(task):
        raise BrokenProcessPool("a process in the pool was terminated abruptly")

    with ThreadPoolExecutor(1) as pool:
        assert _dispatch(list(range(6)), lambda task: task + 100, lambda task: pool.submit(dies, task), 1) == \
            [100, 101, 102, 103, 104, 105]


def test_a_worker_builds_an_adapter_whose_init_takes_its_model_with_it(platform):
    """As a run does: a worker's adapter whose ``__init__`` needs the model gets the version, loaded."""
    from runner import bind_adapter_class
    from runner.sharding import loaded_adapter
    from tests.sample_adapters import CentroidBuiltWithItsModel

    dataset = import_digits(platform).dataset
    model = platform.create_model("digits-centroids", dataset, subsets=SUBSETS)
    bound = bind_adapter_class(CentroidBuiltWithItsModel)
    trainer = bound(model_entity=model)
    trainer.platform = platform
    trainer.train_model(model)
    adapter = loaded_adapter(platform, CentroidBuiltWithItsModel, model.id, "")
    assert adapter.loaded_at_init == "digits-centroids" and adapter.model_entity.id == model.id
    assert set(adapter.centroids) == set(model.labels)  # its artifacts loaded
