"""What a job is expected to cost, in seconds of fit and predict on this machine: read from the
stored timings of like jobs, else measured (a few training steps of the method on random
inputs of its shape). Plans show it (preview.py) and the progress bar weighs its ETA by it.

A measured step is kept for the machine (`RESULTS/cache/step-costs.json`, keyed by the method,
its recipe and shape, the threads, torch and the CPU), so a second plan reads it instead of
timing again: two identical calls give the same estimate, and the second is fast.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from mer_bench.benchmark.execution.environment import cpu_name
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.storage.lifetimes import owner_tag

MEASURED_STEPS = 3  # timed after one warm-up step; their median is the step's cost
MEASURING_S = 2.5  # a plan spends at most this measuring steps (a plan is meant to take seconds)
STEP_CACHE = Path("cache") / "step-costs.json"  # under the results folder


@dataclass
class CostModel:
    """Seconds per job by what it shares with stored ones: the same run on the same task, or
    the same run on another task (per iteration where both state a budget)."""

    same_task: dict[tuple, list[float]] = field(default_factory=dict)
    same_run: dict[str, list[tuple[float, int | None]]] = field(default_factory=dict)
    measure: bool = True  # a torch method never stored here: time a few steps of it
    device: str = "cpu"
    threads: int = 1  # each job's CPU threads, which a measured step runs on
    cache: Path | None = None  # measured steps kept for this machine (STEP_CACHE)
    _measured: dict[tuple, float | None] = field(default_factory=dict)
    _measuring_s: float = 0.0

    @classmethod
    def of_store(cls, store, config=None, measure: bool = True) -> "CostModel":
        workers = max(1, getattr(config, "workers", 1) or 1)
        threads = getattr(config, "threads", None) or max(1, (os.cpu_count() or 1) // workers)
        cache = Path(config.results) / STEP_CACHE if config is not None else None
        model = cls(measure=measure, device=getattr(config, "device", "cpu"), threads=threads,
                    cache=cache)
        for record in store.records(read_only=True):
            model.add(record.job, record.info.get("timings", {}).get("fit_predict_s"))
        return model

    def add(self, job: Job, seconds) -> None:
        if not isinstance(seconds, (int, float)) or seconds != seconds:
            return
        self.same_task.setdefault((job.run_label, job.task, job.budget), []).append(seconds)
        self.same_run.setdefault(job.run_label, []).append((seconds, job.budget))

    def estimate(self, job: Job) -> tuple[float | None, str]:
        """(seconds per job, what the figure rests on); (None, why) where nothing tells."""
        like = self.same_task.get((job.run_label, job.task, job.budget))
        if like:
            return statistics.median(like), f"{len(like)} stored like jobs"
        other = self.same_run.get(job.run_label, [])
        budgeted = [s / b for s, b in other if b]
        if job.budget and budgeted:
            return (statistics.median(budgeted) * job.budget,
                    f"{len(budgeted)} stored jobs of it (other budgets or tasks), per iteration")
        if other and not self._trains(job):
            return (statistics.median(s for s, _ in other),
                    f"{len(other)} stored jobs of it (it trains no steps: budgets do not matter)")
        step, steps = self._step(job)
        if step is None and steps:
            return None, (f"no stored like job; steps not measured (a plan measures for at "
                          f"most {MEASURING_S:g} s)")
        if step is None:
            return None, "no stored like job, no training step to time"
        return step * steps, f"measured step x {steps}"

    def _trains(self, job: Job) -> bool:
        """Whether its method trains in steps (a torch method's recipe), so budgets matter."""
        from mer_bench.methods import METHODS

        return hasattr(METHODS.build(job.method, **dict(job.options)), "recipe")

    def _step(self, job: Job) -> tuple[float | None, int]:
        """Seconds per training step of the job's method (its options and recipe), timed here
        on random inputs of its shape, and the steps its budget asks for."""
        from mer_bench.methods import METHODS

        method = METHODS.build(job.method, **dict(job.options))
        if hasattr(method, "with_recipe") and job.recipe:
            method.with_recipe(dict(job.recipe))
        recipe = getattr(method, "recipe", None)
        if getattr(method, "input_shape", None) is None or recipe is None:
            return None, 0
        steps = job.budget if job.budget is not None else recipe.iterations
        if recipe.epochs is not None and job.budget is None:
            return None, 0  # its steps follow the training set's size, unknown here
        key = (job.method, job.options, job.recipe)
        if key not in self._measured:
            machine_key = self._machine_key(job, method)
            cached = self._read_cache().get(machine_key)
            if isinstance(cached, (int, float)) and cached > 0:
                self._measured[key] = float(cached)
            elif not self.measure or self._measuring_s > MEASURING_S:
                return None, steps
            else:
                started = time.perf_counter()
                self._measured[key] = self._time_steps(method)
                self._measuring_s += time.perf_counter() - started
                self._write_cache(machine_key, self._measured[key])
        return self._measured[key], steps

    def _time_steps(self, method) -> float:
        import numpy as np
        import torch

        from mer_bench.methods.training import pick_device

        device = pick_device(self.device)
        samples = max(2, method.recipe.batch_size)
        inputs = torch.rand(samples, *method.input_shape, generator=torch.Generator().manual_seed(0))
        labels = np.arange(samples) % 5
        model = method.build_model(5).to(device, memory_format=method.memory_format)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)  # as its jobs will run
        try:
            method.fit(model, inputs, labels, 5, 1, 0, device)  # warm-up: allocations, kernels
            times = []
            for _ in range(MEASURED_STEPS):
                started = time.perf_counter()
                method.fit(model, inputs, labels, 5, 1, 0, device)
                times.append(time.perf_counter() - started)
        finally:
            torch.set_num_threads(before)
        return statistics.median(times)

    def _machine_key(self, job: Job, method) -> str:
        import torch

        return json.dumps([job.method, job.options, job.recipe, list(method.input_shape),
                           method.recipe.batch_size, self.device, self.threads,
                           torch.__version__, platform.machine(), cpu_name(),
                           os.cpu_count()], default=str)

    def _read_cache(self) -> dict:
        if self.cache is None:
            return {}
        try:
            found = json.loads(self.cache.read_text())
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: measured again and rewritten whole
        return found if isinstance(found, dict) else {}

    def _write_cache(self, key: str, seconds: float | None) -> None:
        if self.cache is None or seconds is None:
            return
        entries = self._read_cache() | {key: seconds}
        try:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            partial = self.cache.with_name(f".{self.cache.name}.partial{owner_tag()}")
            partial.write_text(json.dumps(entries, indent=1, sort_keys=True))
            os.replace(partial, self.cache)
        except OSError:
            pass  # a read-only results folder plans all the same, measuring each time

