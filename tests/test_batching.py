"""The batch pipeline on its own: chunked prepare, per-item failures, the switch interval it sets."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

import pytest

from runner.batching import _SWITCH_INTERVAL, BatchRunner, _split


@dataclass(frozen=True)
class Item:
    id: str


def test_split_keeps_order_and_balances_chunks():
    batch = list(range(10))
    for parts in (1, 2, 3, 4, 10, 16):
        chunks = _split(batch, parts)
        assert [x for chunk in chunks for x in chunk] == batch
        assert len(chunks) == min(parts, 10) and max(map(len, chunks)) - min(map(len, chunks)) <= 1


def test_run_prepares_in_chunks_and_reports_each_failed_item():
    runner = BatchRunner(prepare_workers=2)
    prepared_on = {}

    def prepare(item):
        prepared_on[item.id] = threading.get_ident()
        if item.id in {"3", "4"}:
            raise ValueError(f"bad {item.id}")
        return int(item.id) * 10

    items = [Item(str(i)) for i in range(12)]
    result = runner.run(items, 6, prepare, lambda inputs: [x + 1 for x in inputs], None, keep_outputs=True)
    runner.close()
    assert result.failed == {"3": "prepare_item_func: ValueError: bad 3", "4": "prepare_item_func: ValueError: bad 4"}
    assert [(i.id, out) for batch, outs in result.outputs for i, out in zip(batch, outs, strict=True)] == [
        (str(i), i * 10 + 1) for i in range(12) if i not in (3, 4)]
    # consecutive items of a batch share a thread: one hand-off per chunk, not per item
    assert prepared_on["0"] == prepared_on["1"] == prepared_on["2"]


def test_switch_interval_is_lowered_while_pipelines_run_and_restored_after():
    before = sys.getswitchinterval()
    seen = []
    outer, inner = BatchRunner(1), BatchRunner(1)

    def infer(inputs):
        seen.append(sys.getswitchinterval())
        if len(seen) == 1:  # a pipeline started while another runs: the last one to end restores
            inner.run([Item("x")], 1, lambda item: 0, lambda xs: xs, None, keep_outputs=False)
            seen.append(sys.getswitchinterval())
        return inputs

    outer.run([Item("a"), Item("b")], 1, lambda item: 0, infer, None, keep_outputs=False)
    outer.close()
    inner.close()
    assert seen == [min(before, _SWITCH_INTERVAL)] * 3
    assert sys.getswitchinterval() == before


def test_an_item_cause_is_one_line_and_the_first_failure_keeps_the_whole_text():
    from runner.batching import BatchResult
    from runner.errors import RunnerError

    result = BatchResult()
    Item = type("Item", (), {})
    items = [Item(), Item()]
    items[0].id, items[1].id = "a", "b"
    try:
        raise RunnerError("vectors of 3 numbers, not 4", where="embed", fix="return 4 numbers per item")
    except RunnerError as err:
        result.fail(items, err)
    assert result.failed == {"a": "RunnerError: vectors of 3 numbers, not 4 ...",
                             "b": "RunnerError: vectors of 3 numbers, not 4 ..."}
    assert "fix: return 4 numbers per item" in result.first[1]


def test_a_failure_is_placed_in_the_adapters_own_file_even_when_it_is_installed():
    """An adapter installed as a package lives under site-packages, as its libraries do: its own files
    (``prefer``) still name the line, not the runner's frame that called it."""
    import sysconfig
    from pathlib import Path

    from runner.errors import raised_at

    installed = str(Path(sysconfig.get_paths()["purelib"]) / "my_adapters" / "model.py")
    namespace: dict = {}
    exec(compile("def predict(batch):\n    return [1 / 0 for _ in batch]\n", installed, "exec"), namespace)

    def runner_calls(batch):
        return namespace["predict"](batch)

    with pytest.raises(ZeroDivisionError) as raised:
        runner_calls([1])
    assert raised_at(raised.value, prefer=(installed,)) == f"{installed}:2 in <listcomp>"
    assert installed not in raised_at(raised.value)  # without it: the deepest frame outside the libraries


def test_a_lookup_the_runner_serves_for_the_adapter_is_placed_at_the_adapters_line():
    """A KeyError raised by the runner's configuration mapping for an adapter's missing key: the
    adapter's line that asked, not the mapping's ``__getitem__``."""
    from runner.configuration import ModelConfiguration
    from runner.errors import raised_at

    class Model:
        configuration = {"lr": 0.1}

        def update(self):
            pass

    configuration = ModelConfiguration(Model())
    with pytest.raises(KeyError) as raised:
        configuration["n_clusters"]  # the adapter's line
    line = raised.value.__traceback__.tb_lineno
    assert raised_at(raised.value) == f"{__file__}:{line} in {sys._getframe().f_code.co_name}"
