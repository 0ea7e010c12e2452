"""The fair inference queue: never more than its slots at once, strictly in arrival order, and a waiter
that gives up (a closed or rerun session) passes its turn on instead of blocking everyone behind it."""

from __future__ import annotations

import threading
import time

import pytest

from core.services.inference_queue import FairQueue


def test_at_most_slots_run_and_turns_follow_arrival_order() -> None:
    queue, order, running, peak = FairQueue(1), [], [0], [0]
    lock = threading.Lock()
    gate = threading.Event()
    seen: dict[int, list[int]] = {}

    def work(i: int) -> None:
        with queue.slot(on_wait=lambda ahead: seen.setdefault(i, []).append(ahead)):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                order.append(i)
            gate.wait(5)
            time.sleep(0.01)
            with lock:
                running[0] -= 1

    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=work, args=(i,)))
        threads[-1].start()
        time.sleep(0.05)  # arrive one after another
    gate.set()
    for t in threads:
        t.join(10)
    assert order == list(range(6)) and peak[0] == 1
    assert seen[5][0] == 5  # told how many films were ahead when it arrived
    assert 0 not in seen  # the first never waited


def test_a_waiter_that_gives_up_does_not_block_the_line() -> None:
    queue = FairQueue(1)
    release = threading.Event()
    done: list[str] = []

    def hold() -> None:
        with queue.slot():
            release.wait(5)

    def quitter(ahead: int) -> None:
        raise RuntimeError("session closed")  # Streamlit stops a script by raising inside it

    def give_up() -> None:
        with pytest.raises(RuntimeError):
            with queue.slot(on_wait=quitter):
                pass
        done.append("gave up")

    def patient() -> None:
        with queue.slot():
            done.append("served")

    threads = [threading.Thread(target=hold)]
    threads[0].start()
    time.sleep(0.05)
    for target in (give_up, patient):
        threads.append(threading.Thread(target=target))
        threads[-1].start()
        time.sleep(0.05)
    release.set()
    for t in threads:
        t.join(10)
    assert done == ["gave up", "served"] and queue.waiting() == 0
