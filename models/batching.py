"""Dynamic batching across camera threads without a thread of its own (leader/follower).

Each camera thread submits its items (frames, or a frame's people) and blocks. If no batch is running, the caller
becomes the leader: it takes everything pending (up to ``max_batch`` items), runs the batch function once with the
condition released, hands each caller its share of the results and wakes them; items submitted meanwhile form the
next batch. Camera threads drift out of step, so a leader first waits up to ``linger_s`` for the callers seen in the
recent batches (threads that have not submitted for ``recent`` batches stop being waited for): with one camera it
never waits. Nothing keeps running once the cameras stop, and an exception in a batch is raised in every caller of
that batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Optional, Sequence


class _Request:
    __slots__ = ("items", "results", "error", "done", "thread")

    def __init__(self, items):
        self.items = items
        self.thread = threading.get_ident()
        self.results = None
        self.error: Optional[BaseException] = None
        self.done = False


class Batcher:
    """Runs ``run(items) -> results`` (one result per item, in order) on the items of all waiting callers at once.

    Args:
        run: the batch function.
        max_batch: most items per call (a single request larger than this still runs, alone).
        linger_s: longest a leader waits for the other recent callers (seconds).
        recent: batches over which callers are remembered.

    Attributes:
        calls: batch calls made so far.
        items: items processed so far.
    """

    def __init__(self, run: Callable[[list], Sequence], max_batch: int = 16, linger_s: float = 0.1, recent: int = 8):
        self._run = run
        self.max_batch = max(1, int(max_batch))
        self.linger_s = linger_s
        self._recent: deque = deque(maxlen=recent)
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._running = False
        self.calls = 0
        self.items = 0

    def submit(self, items: list) -> list:
        """Process ``items`` (in a batch with other callers' items) and return their results, in order.

        Raises:
            Exception: whatever the batch function raised for the batch these items were in.
        """
        request = _Request(items)
        with self._cond:
            self._pending.append(request)
            self._cond.notify_all()  # a lingering leader may be waiting for this caller
            while not request.done:
                if not self._running:
                    self._lead()
                else:
                    self._cond.wait()
        if request.error is not None:
            raise request.error
        return request.results

    def _expected_callers(self) -> int:
        return len(set().union(*self._recent)) if self._recent else 1

    def _lead(self) -> None:
        """Called with the condition held; releases it while the batch runs."""
        deadline = time.monotonic() + self.linger_s
        expected = self._expected_callers()
        while (
            len({r.thread for r in self._pending}) < expected
            and sum(len(r.items) for r in self._pending) < self.max_batch
        ):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._running = True  # others queue up instead of leading meanwhile
            self._cond.wait(left)
            self._running = False
        batch, count = [], 0
        while self._pending and (not batch or count + len(self._pending[0].items) <= self.max_batch):
            batch.append(self._pending.pop(0))
            count += len(batch[-1].items)
        self._recent.append({r.thread for r in batch})
        self._running = True
        self._cond.release()
        try:
            try:
                results = list(self._run([item for r in batch for item in r.items]))
                offset = 0
                for r in batch:
                    r.results = results[offset : offset + len(r.items)]
                    offset += len(r.items)
            except BaseException as exc:  # every caller of the batch learns of it
                for r in batch:
                    r.error = exc
        finally:
            self._cond.acquire()
            self._running = False
            self.calls += 1
            self.items += count
            for r in batch:
                r.done = True
            self._cond.notify_all()
