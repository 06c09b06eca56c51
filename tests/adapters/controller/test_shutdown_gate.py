"""``gitops run``'s shutdown gate: a Lease won once stopping has begun starts no loop.

Adapter tier, in process. Leader election calls back on its own thread; the shutdown closes the
gate before it waits for the loops it knows of, so no loop can start after that point (one did,
and ran on into the interpreter's exit: ``gitops run`` died of SIGABRT on SIGTERM).
"""

from __future__ import annotations

import threading

from gitops.controller.command import Gate


def _thread() -> threading.Thread:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    return thread


def test_the_gate_keeps_what_it_started_until_closed_and_starts_nothing_after() -> None:
    gate = Gate()
    started: list[threading.Thread] = []

    def start() -> threading.Thread:
        started.append(_thread())
        return started[-1]

    assert gate.enter(start) is True
    assert gate.enter(lambda: None) is True  # a start without a thread (the sharded leader)
    assert gate.close() == started  # the shutdown joins exactly these
    assert gate.enter(start) is False  # a Lease won while stopping
    assert len(started) == 1
    assert gate.close() == started


def test_closing_waits_for_a_start_under_way_and_includes_its_thread() -> None:
    gate = Gate()
    entered, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=lambda: None)

    def start() -> threading.Thread:
        entered.set()
        release.wait(30)
        thread.start()
        return thread

    leader = threading.Thread(target=gate.enter, args=(start,))
    leader.start()
    assert entered.wait(30)
    closed: list[list[threading.Thread]] = []
    closer = threading.Thread(target=lambda: closed.append(gate.close()))
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # held until the start under way has its thread
    release.set()
    closer.join(30)
    leader.join(30)
    assert closed == [[thread]]
