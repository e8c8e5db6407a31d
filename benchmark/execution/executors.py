"""Executors run a list of jobs through one function and yield outcomes as they finish.

Serial runs in this process; processes runs `workers` spawned worker processes, each with its
share of the CPU threads and, where GPUs are visible, pinned to one of them (worker i to GPU
i mod n); ray submits each item as a task to a Ray cluster; slurm (execution/slurm.py) as an
element of a SLURM job array. All store results the same way,
through the job function, so what ran a job never changes where its result lands.

Each executor is a context manager: `start()` (on entering) gets workers going early, so that
they import torch while the caller is still planning; leaving shuts them down.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any, Callable, Iterable, Iterator

from mer_bench.benchmark.storage.lifetimes import die_with_parent


class _Executor:
    def start(self) -> None:
        """Gets workers ready before the first job (a no-op where there is nothing to start)."""

    def close(self) -> None:
        """Shuts down what `start` started."""

    def abort(self) -> None:
        """After Ctrl-C: no item starts any more, and those running are stopped (a job that
        was not stored whole is not stored at all, and runs again on the next run)."""
        self.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def in_flight(self) -> dict[str, str]:
        """Job key -> where it is queued or running already, outside this run (an earlier
        SLURM array): a resubmission leaves those jobs to it. Local and Ray: none."""
        return {}

    def wait_for(self, keys: set[str]) -> None:
        """Returns once none of the jobs `keys` is queued or running outside this run."""


class SerialExecutor(_Executor):
    name = "serial"

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            yield function(item)


def visible_gpus() -> tuple[str, ...]:
    """The CUDA devices this process may use, as CUDA_VISIBLE_DEVICES names them (without
    creating a CUDA context, so that spawned workers can still be pinned)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return tuple(d.strip() for d in listed.split(",") if d.strip())
    try:
        import torch
    except ImportError:
        return ()
    return tuple(str(i) for i in range(torch.cuda.device_count()))


_STARTED = None  # in a worker: where it says which item it starts (see ProcessExecutor)


def _init_worker(threads: int, gpus: tuple[str, ...], slots, started,
                 preload: tuple[str, ...]) -> None:
    """Pins this worker to its GPU before torch touches CUDA; sets its CPU threads; imports
    `preload` (the job function's modules) once, early."""
    global _STARTED
    die_with_parent()
    # Ctrl-C reaches every process of the terminal's group: a worker leaves it to the driver,
    # which stops the pool (abort), instead of failing its job and taking the next one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tqdm's default lock is a multiprocessing semaphore, which a worker stopped by abort()
    # could not unregister (Python warns of "leaked semaphore objects"): a thread lock will do
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    _STARTED = started
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    os.environ["MER_BENCH_WORKER"] = str(slot)
    import torch

    torch.set_num_threads(threads)
    for module in preload:
        importlib.import_module(module)


def _ready() -> None:
    """A first task per worker: makes the pool spawn it now, not at the first job."""


def _tracked(function: Callable[[Any], Any], index: int, item: Any) -> Any:
    _STARTED.put(index)  # a SimpleQueue: written before the job runs, even if it then dies
    return function(item)


class ProcessExecutor(_Executor):
    """Worker processes, started early.

    A worker that dies (killed, out of memory) breaks the pool. The items it and the others
    had started become suspects; the rest go back in the queue. In a fresh pool each suspect
    runs alone, so that a death is charged to the item that caused it: retried up to
    `retries` times, after which `crashed(item, reason)` gives its outcome, as with Ray.
    """

    name = "processes"

    def __init__(self, workers: int, gpus: tuple[str, ...] = (), retries: int = 2,
                 crashed: Callable[[Any, str], Any] | None = None,
                 preload: tuple[str, ...] = (), threads: int | None = None):
        self.workers, self.gpus, self.preload = workers, tuple(gpus), tuple(preload)
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.retries, self.crashed = retries, crashed
        self._pool: ProcessPoolExecutor | None = None
        self._started = None

    def start(self) -> None:
        if self._pool is not None:
            return
        context = get_context("spawn")
        slots, self._started = context.Queue(), context.SimpleQueue()
        for slot in range(self.workers):
            slots.put(slot)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                         initializer=_init_worker,
                                         initargs=(self.threads, self.gpus, slots, self._started,
                                                   self.preload))
        for _ in range(self.workers):
            self._pool.submit(_ready)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        if self._pool is None:
            return
        processes = list((self._pool._processes or {}).values())  # noqa: SLF001 -- no public way
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)  # its workers are gone: at once
        self._pool = None

    def _started_indices(self) -> set[int]:
        indices = set()
        while not self._started.empty():
            indices.add(self._started.get())
        return indices

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        started_here = self._pool is None
        queue, suspects, deaths = list(enumerate(items)), deque(), {}
        try:
            while queue or suspects:
                self.start()
                if suspects:  # alone in the pool: if a worker dies now, this item killed it
                    index, item = suspects.popleft()
                    try:
                        yield self._pool.submit(function, item).result()
                    except BrokenProcessPool as error:
                        self.close()
                        deaths[index] = deaths.get(index, 0) + 1
                        if deaths[index] <= self.retries:
                            suspects.append((index, item))
                        elif self.crashed is None:
                            raise
                        else:
                            yield self.crashed(item, f"worker process died {deaths[index]} "
                                                     f"times: {error}")
                    continue
                futures = {self._pool.submit(_tracked, function, i, item): (i, item)
                           for i, item in queue}
                queue, broken, pending, started = [], [], set(futures), set()
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    started |= self._started_indices()  # drained as it goes: a pipe fills up
                    for future in done:
                        try:
                            yield future.result()
                        except BrokenProcessPool:
                            broken.append(futures[future])
                if broken:
                    started |= self._started_indices()
                    suspects.extend(entry for entry in broken if entry[0] in started)
                    queue = [entry for entry in broken if entry[0] not in started]
                    self.close()
        finally:
            if started_here:
                self.close()


def _call(function: Callable[[Any], Any], item: Any) -> Any:
    return function(item)


class RayExecutor(_Executor):
    """Runs each item as a Ray task on a running cluster (`address`) or a local one.

    A task whose worker dies (killed, out of memory) is retried by Ray up to `retries` times;
    after that, `crashed(item, reason)` gives its outcome, so the grid goes on. Results land
    in the same store whatever node ran them (the store path must be shared by the nodes).
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_job: float = 1.0,
                 gpus_per_job: float = 0.0, retries: int = 2,
                 crashed: Callable[[Any, str], Any] | None = None):
        self.address, self.cpus, self.gpus = address, cpus_per_job, gpus_per_job
        self.retries, self.crashed = retries, crashed

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("the ray executor needs Ray: pip install 'mer-bench[ray]'") from None
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)

    def abort(self) -> None:
        import ray

        for ref in list(getattr(self, "_pending", {})):
            ray.cancel(ref, force=True)

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        self.start()
        import ray

        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus,
                          max_retries=self.retries)(_call)
        items = list(items)
        pending = {task.remote(function, item): item for item in items}
        self._pending = pending
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(done[0])
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayError as error:
                if self.crashed is None:
                    raise
                yield self.crashed(item, f"ray task failed after {self.retries} retries: "
                                         f"{type(error).__name__}: {error}")


def make_executor(workers: int, kind: str = "local", ray_address: str | None = None,
                  crashed: Callable[[Any, str], Any] | None = None,
                  gpus_per_job: float = 0.0, gpus: tuple[str, ...] = (),
                  preload: tuple[str, ...] = (), threads: int | None = None):
    """`local`: serial for 1 worker, else worker processes (pinned round-robin to `gpus`,
    each importing `preload` at start, with `threads` CPU threads, default the cores shared
    out); `ray`: Ray tasks. (SLURM arrays: execution/slurm.py, which builds on these.)"""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if kind == "ray":
        return RayExecutor(ray_address, gpus_per_job=gpus_per_job, crashed=crashed)
    if kind != "local":
        raise ValueError(f"unknown executor {kind!r}: local or ray (or slurm, execution/slurm.py)")
    return SerialExecutor() if workers == 1 else ProcessExecutor(workers, gpus, crashed=crashed,
                                                                 preload=preload,
                                                                 threads=threads)
