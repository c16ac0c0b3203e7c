"""A stop signal that lands while the store takes or ends a write transaction leaves none open."""

from __future__ import annotations

import signal
import sqlite3

import pytest

from runner import interrupts
from runner.interrupts import Terminated
from runner.platform.local.store import Store


def _stop(signum, frame):
    """What runner.cli's handler does with a signal: wait while the store's transaction is open."""
    if interrupts.held_back(signum):
        return
    raise Terminated(signum)


@pytest.fixture
def stop_on_alarm():
    before = signal.signal(signal.SIGALRM, _stop)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, before)


def test_a_stop_signal_during_writes_leaves_no_transaction_open(tmp_path, stop_on_alarm):
    store = Store(str(tmp_path / "platform.db"))
    con = store.connection()
    stops = 0
    for attempt in range(2000):  # timers of 30-210 us land at every point of write()'s own frames
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.00003 * (1 + attempt % 7))
            while True:
                with store.write():
                    pass
        except Terminated:
            signal.setitimer(signal.ITIMER_REAL, 0)
            stops += 1
            assert not con.in_transaction and not store.writing(), f"left open by stop {stops}"
    assert stops == 2000

    store.set_import_source("after", {"the": "stop"})  # what a stopped run writes next: its failure
    other = sqlite3.connect(store.path, isolation_level=None)
    assert other.execute("SELECT COUNT(*) FROM meta WHERE key = 'import_source:after'").fetchone() == (1,)
    other.execute("BEGIN IMMEDIATE")  # no lock left held
    other.execute("ROLLBACK")


def test_a_second_signal_during_a_transaction_stops_at_once(tmp_path, stop_on_alarm):
    store = Store(str(tmp_path / "platform.db"))
    with pytest.raises(Terminated), store.write():
        signal.raise_signal(signal.SIGALRM)  # the first waits for the transaction's end
        signal.raise_signal(signal.SIGALRM)  # the second does not
    assert not store.connection().in_transaction
    with store.write():  # and the first is not delivered later, into another transaction
        store.set_import_source("x", {})
