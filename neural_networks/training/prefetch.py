"""The next batches prepared in a background thread while the current training step runs.

:class:`Prefetch` iterates a loader (gathering, augmenting, standardising and converting each
batch) in one background thread, a bounded number of batches ahead of the training loop. The
loader still runs sequentially in one thread, so its order and its random augmentation are those
of a plain loop, and ``limit`` stops it where the loop would stop asking. An exception in the
loader is raised in the training thread at the batch where it happened; leaving the loop early
(``break``, an error, Ctrl-C) stops the thread before :meth:`Prefetch.close` returns, after at
most the batch it is preparing.

NumPy releases the GIL while it copies and computes, so the loader's work overlaps with the
step's wherever a core would otherwise wait (single-threaded passes, Python overhead).
"""

from __future__ import annotations

import itertools
import queue
import threading

__all__ = ["Prefetch"]

_ITEM, _END, _ERROR = 0, 1, 2
_POLL_S = 0.05  # how often a producer waiting for room checks whether it should stop


class Prefetch:
    """Iterate ``iterable`` up to ``depth`` items ahead in a background thread (``depth >= 1``),
    taking at most ``limit`` items from it (``None``: all). Use once, preferably as a context
    manager::

        with Prefetch(loader, limit=n + 1) as batches:
            for X, Y in batches:
                ...
    """

    def __init__(self, iterable, limit: int | None = None, depth: int = 2) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive int, got {depth!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        items = iter(iterable) if limit is None else itertools.islice(iterable, limit)
        self._thread = threading.Thread(
            target=self._produce, args=(items,), name="neural_networks-prefetch", daemon=True
        )
        self._thread.start()
        self._done = False

    def _produce(self, items) -> None:
        try:
            for item in items:
                if not self._put((_ITEM, item)):
                    return
            self._put((_END, None))
        except BaseException as err:  # handed to the training thread, which raises it
            self._put((_ERROR, err))

    def _put(self, entry) -> bool:
        """Queue ``entry`` once there is room; ``False`` if told to stop meanwhile."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        try:
            while not self._done:
                kind, value = self._queue.get()
                if kind == _END:
                    self._done = True
                elif kind == _ERROR:
                    self._done = True
                    raise value
                else:
                    yield value
        finally:
            self.close()

    def close(self) -> None:
        """Stop the background thread and wait for it (it finishes the item it is preparing)."""
        self._done = True
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
