"""Executors run a list of jobs through one function and yield outcomes as they finish.

Serial runs in this process; processes runs `workers` spawned worker processes, each with its
share of the CPU threads (or its own GPU, when there are several). Both store results the same
way, through the job function, so what ran a job never changes where its result lands.
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


def make_executor(workers: int) -> SerialExecutor | ProcessExecutor:
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    return SerialExecutor() if workers == 1 else ProcessExecutor(workers)
