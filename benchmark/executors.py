"""Executors run a list of jobs through one function and yield outcomes as they finish.

Serial runs in this process; processes runs `workers` spawned worker processes, each with its
share of the CPU threads; ray submits each item as a task to a Ray cluster. All store results
the same way, through the job function, so what ran a job never changes where its result lands.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Callable, Iterable, Iterator


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class SerialExecutor:
    name = "serial"

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            yield function(item)


class ProcessExecutor:
    name = "processes"

    def __init__(self, workers: int):
        self.workers = workers
        self.threads = max(1, (os.cpu_count() or 1) // workers)

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        items = list(items)
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                 initializer=_init_worker, initargs=(self.threads,)) as pool:
            pending = {pool.submit(function, item) for item in items}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()


def _call(function: Callable[[Any], Any], item: Any) -> Any:
    return function(item)


class RayExecutor:
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

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        try:
            import ray
        except ImportError:
            raise ValueError("the ray executor needs Ray: pip install 'mer-bench[ray]'") from None
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus,
                          max_retries=self.retries)(_call)
        items = list(items)
        pending = {task.remote(function, item): item for item in items}
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
                  gpus_per_job: float = 0.0):
    """`local`: serial for 1 worker, else worker processes; `ray`: Ray tasks."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if kind == "ray":
        return RayExecutor(ray_address, gpus_per_job=gpus_per_job, crashed=crashed)
    if kind != "local":
        raise ValueError(f"unknown executor {kind!r}: local or ray")
    return SerialExecutor() if workers == 1 else ProcessExecutor(workers)
