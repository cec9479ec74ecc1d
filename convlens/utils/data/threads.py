"""The DataLoader's worker threads.

``WorkerThreads(n, ...)`` starts ``n`` threads, each with its own task queue. The loader hands batch k
to worker ``k % n`` (torch's round-robin) and reads the results back in the same order, so batches come
out in sampler order whatever the timing. A task is a plain callable; its result or exception goes to
the queue it names, so an abandoned pass (a ``break``) never mixes its batches into the next one.
"""

from __future__ import annotations

import queue
import threading

from convlens.utils.data.worker import WorkerInfo, _set_worker_info

__all__ = ["WorkerThreads"]

_STOP = object()


class WorkerThreads:
    """``n`` daemon threads; ``submit(w, fn, out, cancel)`` runs ``fn()`` on worker ``w`` and puts
    ``(True, result)`` or ``(False, exception)`` on ``out`` (skipped once ``cancel`` is set).

    With ``info=True`` each thread answers ``get_worker_info()`` (id, num_workers, ``base_seed + id``,
    dataset) and runs ``worker_init_fn(id)`` first, as a torch worker process does.
    """

    def __init__(self, n: int, dataset, base_seed: int, worker_init_fn=None, info: bool = True):
        self.n = int(n)
        self._tasks = [queue.SimpleQueue() for _ in range(self.n)]
        self._threads = []
        for w in range(self.n):
            winfo = WorkerInfo(w, self.n, base_seed + w, dataset) if info else None
            t = threading.Thread(target=self._run, args=(w, winfo, worker_init_fn), daemon=True,
                                 name=f"convlens-dataloader-{w}")
            t.start()
            self._threads.append(t)

    def _run(self, w: int, info, worker_init_fn) -> None:
        _set_worker_info(info)
        init_error = None
        if worker_init_fn is not None and info is not None:
            try:
                worker_init_fn(w)
            except BaseException as e:  # reported with every task of this worker
                init_error = e
        tasks = self._tasks[w]
        while True:
            task = tasks.get()
            if task is _STOP:
                return
            fn, out, cancel = task
            if cancel.is_set():
                continue
            if init_error is not None:
                out.put((False, init_error))
                continue
            try:
                out.put((True, fn()))
            except BaseException as e:  # handed to the consumer, re-raised there with its traceback
                out.put((False, e))

    def submit(self, w: int, fn, out, cancel: threading.Event) -> None:
        self._tasks[w].put((fn, out, cancel))

    def close(self, timeout: float = 5.0) -> None:
        for q in self._tasks:
            q.put(_STOP)
        me = threading.current_thread()
        for t in self._threads:
            if t is not me:
                t.join(timeout)


def get_result(out, timeout: float):
    """The next ``(ok, value)`` from ``out``: waits at most ``timeout`` seconds when it is > 0."""
    try:
        return out.get(timeout=timeout if timeout > 0 else None)
    except queue.Empty:
        raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None


def put_until(out: queue.Queue, item, cancel: threading.Event) -> bool:
    """Put on a bounded queue, giving up once ``cancel`` is set (a consumer that stopped reading)."""
    while not cancel.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
