"""Local worker processes: one per GPU (pinned through CUDA_VISIBLE_DEVICES), CPU threads
shared out, started early. (Resume, failures and killed workers: tests/runs/test_runner.py.)"""

import os
import time

import pytest

from mer_bench.benchmark.execution.executors import ProcessExecutor, make_executor, visible_gpus

pytestmark = pytest.mark.slow


def where_am_i(_item) -> tuple[str | None, str, int]:
    import torch

    time.sleep(0.5)  # long enough that both workers take items
    return (os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ["MER_BENCH_WORKER"],
            torch.get_num_threads())


def test_workers_are_pinned_one_per_gpu_round_robin_with_their_share_of_threads():
    with ProcessExecutor(3, gpus=("3", "5")) as executor:
        seen = list(executor.map(where_am_i, range(9)))
    by_worker = {worker: gpu for gpu, worker, _ in seen}
    assert by_worker == {"0": "3", "1": "5", "2": "3"}  # worker i -> gpus[i mod 2]
    assert {threads for *_, threads in seen} == {max(1, (os.cpu_count() or 1) // 3)}


def test_without_gpus_workers_are_not_pinned():
    with ProcessExecutor(2) as executor:
        seen = list(executor.map(where_am_i, range(4)))
    assert {gpu for gpu, *_ in seen} == {os.environ.get("CUDA_VISIBLE_DEVICES")}


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 7")
    assert visible_gpus() == ("2", "7")  # physical names, so a pinned worker gets the right one
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == ()


def test_make_executor_rejects_bad_settings():
    with pytest.raises(ValueError, match="at least 1"):
        make_executor(0)
    with pytest.raises(ValueError, match="unknown executor 'lsf': local or ray"):
        make_executor(2, "lsf")


def test_many_small_items_do_not_fill_the_started_pipe():
    """Each item's start note goes through a pipe (64 KiB on Linux); the driver drains it as
    results come in, so thousands of items never block a worker."""
    with ProcessExecutor(2) as executor:
        results = sorted(executor.map(abs, range(-6000, 0)))
    assert results == list(range(1, 6001))
