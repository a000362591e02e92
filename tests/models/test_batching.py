"""The leader/follower batcher: callers' items are run together, each gets its own results, one caller never waits."""

import threading
import time

from models.batching import Batcher


def test_callers_in_step_share_one_call_and_each_gets_its_own_results():
    calls = []

    def run(items):
        calls.append(list(items))
        time.sleep(0.05)
        return [item * 10 for item in items]

    batcher = Batcher(run, max_batch=8, linger_s=0.5)
    results = {}

    def camera(i):
        for step in range(3):
            results[(i, step)] = batcher.submit([i * 100 + step])

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {(i, s): [(i * 100 + s) * 10] for i in range(3) for s in range(3)}
    assert batcher.items == 9 and batcher.calls < 9  # once the three callers are known they are batched together
    assert max(len(c) for c in calls) == 3


def test_a_single_caller_does_not_linger():
    batcher = Batcher(lambda items: items, linger_s=1.0)
    t0 = time.perf_counter()
    for i in range(5):
        assert batcher.submit([i]) == [i]
    assert time.perf_counter() - t0 < 0.5 and batcher.calls == 5
