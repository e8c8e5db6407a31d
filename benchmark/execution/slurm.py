"""SLURM job arrays through submitit: each item (a job, or a fold-parallel group of jobs) is an
element of one array per command, and writes to the store exactly as a local worker does (the
results folder must be on a file system the nodes share).

The driver follows the array with sacct, as submitit does: an element that fails, is
cancelled or runs out of time is recorded as a failure naming its SLURM job id and log file,
and runs again on the next run; an element's output is read only from the store, where a job
lands whole or not at all. Each submission is kept in RESULTS/slurm/<stamp>/submission.json
(which element holds which jobs), so that `mer-bench status` and `mer-bench cancel` can follow
a detached run, and a resubmission leaves out the jobs an earlier array still holds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from mer_bench.benchmark.execution.executors import _Executor
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.storage.store import Store

QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING",
          "SUSPENDED"}
RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"}
# Anything else sacct says is an end: COMPLETED, or FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY...
COMPLETED_GRACE_S = 30.0  # a COMPLETED element's result file may reach a shared disk late
# What the executor calls: sbatch submits (submitit also asks for srun), sacct follows, scancel
# stops.
SLURM_COMMANDS = ("sbatch", "srun", "sacct", "scancel")


def missing_slurm_commands() -> list[str]:
    """SLURM's commands that are not on PATH here ([] on a cluster's login node)."""
    return [name for name in SLURM_COMMANDS if shutil.which(name) is None]


@dataclass
class Element:
    """One array element: its SLURM job id (`ARRAY_INDEX`), the jobs it runs (canonical
    text), its log."""

    id: str
    jobs: list[str]
    log: str

    def job_list(self) -> list[Job]:
        return [Job.from_canonical(text) for text in self.jobs]

    def keys(self) -> list[str]:
        return [job.key for job in self.job_list()]


@dataclass
class Submission:
    folder: Path
    array: str
    elements: list[Element] = field(default_factory=list)
    submitted: float = 0.0

    FILE = "submission.json"

    def save(self) -> None:
        record = {"array": self.array, "submitted": self.submitted,
                  "elements": [asdict(e) for e in self.elements]}
        temporary = self.folder / f".{self.FILE}.{os.getpid()}"
        temporary.write_text(json.dumps(record, indent=1))
        temporary.replace(self.folder / self.FILE)

    @classmethod
    def load(cls, folder: Path) -> "Submission":
        record = json.loads((folder / cls.FILE).read_text())
        return cls(folder, record["array"], [Element(**e) for e in record["elements"]],
                   record["submitted"])


def submissions(results: Path) -> list[Submission]:
    """The SLURM submissions made from this results folder, oldest first."""
    found = []
    for path in sorted((Path(results) / "slurm").glob(f"*/{Submission.FILE}")):
        try:
            found.append(Submission.load(path.parent))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged record: its jobs are simply not known to be in flight
    return found


_RANGE = re.compile(r"^(?P<array>\d+)_\[(?P<ranges>[^\]]+)\]$")


def queue_states(arrays: Iterable[str]) -> dict[str, str]:
    """Element id ('12_3') -> its state, as sacct says (an array's pending elements, which it
    lists as '12_[4-9%2]', each on its own). Elements sacct does not list yet are missing."""
    arrays = sorted(set(arrays))
    if not arrays:
        return {}
    try:
        listed = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j",
                                 ",".join(arrays)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"sacct could not be asked about SLURM arrays {arrays}: {error}") \
            from None
    if listed.returncode != 0:
        raise RuntimeError(f"sacct could not be asked about SLURM arrays {arrays}: "
                           f"{listed.stderr.strip()}")
    states = {}
    for line in listed.stdout.splitlines():
        job_id, _, state = line.partition("|")
        state = state.split(" ")[0]  # "CANCELLED by 0"
        match = _RANGE.match(job_id)
        if not match:
            states[job_id] = state
            continue
        for part in match["ranges"].split("%")[0].split(","):
            first, _, last = part.partition("-")
            for index in range(int(first), int(last or first) + 1):
                states[f"{match['array']}_{index}"] = state
    return states


UNLISTED_S = 600.0  # an element sacct does not list this soon after submission is queued


def is_live(state: str | None, submitted: float) -> bool:
    """Queued or running; an element sacct does not list counts as queued for a while after
    its submission (accounting lags), then as gone (accounting forgot it)."""
    if state is None:
        return time.time() - submitted < UNLISTED_S
    return state in QUEUED or state in RUNNING


def _element(function: Callable[[Any], Any], threads: int, item: Any) -> Any:
    """What an element runs: the job function with the element's CPU threads.

    submitit asks SLURM for a warning signal before the time limit (up to a minute early, at
    SLURM's resolution) and would raise inside the job, which would then be recorded as the
    job's own error; ignored, the element runs to its limit, where SLURM stops it and says
    TIMEOUT, and the driver records that. submitit also ignores SIGTERM, SLURM's stop at the
    limit or at `scancel`; the element ends there instead of finishing its job unseen in
    SLURM's grace period (a job lands whole or not at all either way)."""
    import torch

    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(threads)
    return function(item)


class SlurmExecutor(_Executor):
    """Submits items as one SLURM job array and yields their outcomes as elements end.

    `settings`: protocol/slurm_settings.py keys; `jobs_of(item)`: the jobs an item runs (kept
    in the submission record); `crashed(item, reason)`: the outcome of an element that ended
    without one (failed, cancelled, out of time or memory)."""

    name = "slurm"

    def __init__(self, results: Path, settings: dict[str, Any],
                 jobs_of: Callable[[Any], list[Job]],
                 crashed: Callable[[Any, str], Any] | None = None, threads: int | None = None,
                 poll_s: float = 2.0):
        self.results, self.settings = Path(results), dict(settings)
        self.jobs_of, self.crashed = jobs_of, crashed
        self.threads = threads or self.settings["cpus"]
        self.poll_s = poll_s
        self.submission: Submission | None = None

    def start(self) -> None:
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise ValueError("the slurm executor needs submitit: pip install "
                             "'mer-bench[slurm]'") from None
        missing = missing_slurm_commands()
        if missing:  # refused before a task is prepared or a folder made
            raise ValueError(f"--executor slurm: SLURM's commands were not found on PATH "
                             f"({', '.join(missing)} missing), so this machine cannot submit "
                             "a job array; run it on the cluster's login node, or use "
                             "--executor local (or ray) here")

    def _submitit(self, folder: Path):
        import submitit

        executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
        s = self.settings
        parameters = {"job_name": "mer-bench", "time": s["time"], "cpus_per_task": s["cpus"],
                      "array_parallelism": s.get("parallel", 256),
                      "signal_delay_s": min(90, s["time"] * 15)}
        if s["gpus"]:
            parameters["gres"] = f"gpu:{s['gpus']}"
        for key, name in (("partition", "partition"), ("mem", "mem"), ("account", "account"),
                          ("qos", "qos")):
            if key in s:
                parameters[name] = s[key]
        executor.update_parameters(**parameters)
        return executor

    def submit(self, function: Callable[[Any], Any], items: list[Any]) -> tuple[Submission, list]:
        """One array of `items`; its record saved before this returns."""
        self.start()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        parent = self.results / "slurm"
        made_parent = not parent.exists()
        folder = parent / f"{stamp}-{os.getpid()}"
        folder.mkdir(parents=True)
        try:
            executor = self._submitit(folder)
            jobs = executor.map_array(partial(_element, function, self.threads), items)
        except Exception:  # nothing submitted: the folder made for it (new, its own) goes
            shutil.rmtree(folder, ignore_errors=True)
            if made_parent and not any(parent.iterdir()):
                parent.rmdir()
            raise
        submission = Submission(folder, jobs[0].job_id.split("_")[0], [
            Element(job.job_id, [j.canonical() for j in self.jobs_of(item)],
                    str(job.paths.stderr))
            for job, item in zip(jobs, items)], time.time())
        submission.save()
        self.submission = submission
        return submission, jobs

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        items = list(items)
        if not items:
            return
        submission, jobs = self.submit(function, items)
        pending = {job.job_id: (job, item, element)
                   for job, item, element in zip(jobs, items, submission.elements)}
        completed_at: dict[str, float] = {}
        while pending:
            for job_id, (job, item, element) in list(pending.items()):
                if job.paths.result_pickle.exists():
                    del pending[job_id]
                    yield self._outcome(job, item, element)
            if not pending:
                break
            states = queue_states([submission.array])
            for job_id, (job, item, element) in list(pending.items()):
                state = states.get(job_id)
                if is_live(state, submission.submitted) or job.paths.result_pickle.exists():
                    continue
                if state == "COMPLETED":  # ended well: its result file is on its way
                    first = completed_at.setdefault(job_id, time.time())
                    if time.time() - first < COMPLETED_GRACE_S:
                        continue
                del pending[job_id]
                yield self._failed(item, element, state, "it stopped before it returned")
            time.sleep(self.poll_s)

    def _outcome(self, job, item: Any, element: Element) -> Any:
        try:
            return job.result()
        except Exception as error:  # the element raised, or submitit stopped it (time limit)
            message = str(error).strip().splitlines()
            return self._failed(item, element, None, message[-1] if message else repr(error))

    def _failed(self, item: Any, element: Element, state: str | None, why: str) -> Any:
        if state is None:
            state = queue_states([element.id.split("_")[0]]).get(element.id, "FAILED")
        reason = failure_reason(element, state, why)
        if self.crashed is None:
            raise RuntimeError(reason)
        return self.crashed(item, reason)

    def abort(self) -> None:
        if self.submission is not None:
            cancel([self.submission.array])

    def in_flight(self) -> dict[str, str]:
        """Job key -> element id, for the jobs an earlier submission from this results folder
        holds queued or running (a resubmission leaves them to it)."""
        return in_flight(self.results)


    def wait_for(self, keys: set[str]) -> None:
        """Polls the queue until no earlier array holds any of `keys` queued or running, then
        records the failures of those that ended without storing them (as `status` does)."""
        while set(in_flight(self.results)) & keys:
            time.sleep(self.poll_s)
        follow(self.results, Store(self.results))


def failure_reason(element: Element, state: str, why: str) -> str:
    return (f"SLURM element {element.id} ended {state}: {why}; its log: {element.log}")


def in_flight(results: Path) -> dict[str, str]:
    earlier = submissions(results)
    if not earlier:
        return {}
    states = queue_states(s.array for s in earlier)
    return {key: element.id for s in earlier for element in s.elements
            if is_live(states.get(element.id), s.submitted) for key in element.keys()}


def cancel(arrays: list[str]) -> None:
    if arrays:
        subprocess.run(["scancel", *arrays], capture_output=True, timeout=60)


@dataclass
class ArrayStatus:
    """Where the jobs of one submission are: counts of jobs stored, queued, running and
    failed (an element that ended without storing them), and each failure's reason."""

    submission: Submission
    counts: dict[str, int]
    failures: list[str]


def follow(results: Path, store: Store) -> list[ArrayStatus]:
    """Every submission from this results folder, from the store and the queue. The jobs of an
    element that ended without storing them, and that no later array holds, are failures:
    recorded (naming the element and its log), as a waiting run records them, unless the
    element completed (its jobs then recorded their own errors); the next run takes them."""
    earlier = submissions(results)
    states = queue_states(s.array for s in earlier) if earlier else {}
    live = {key for s in earlier for e in s.elements if is_live(states.get(e.id), s.submitted)
            for key in e.keys()}
    statuses = []
    for submission in earlier:
        counts = {"stored": 0, "queued": 0, "running": 0, "failed": 0, "resubmitted": 0}
        failures = []
        for element in submission.elements:
            state = states.get(element.id)
            jobs = element.job_list()
            unstored = [job for job in jobs if not store.is_done(job, read_only=True)]
            counts["stored"] += len(jobs) - len(unstored)
            if not unstored:
                continue
            if is_live(state, submission.submitted):
                counts["running" if state in RUNNING else "queued"] += len(unstored)
                continue
            again = [job for job in unstored if job.key in live]
            counts["resubmitted"] += len(again)
            failed = [job for job in unstored if job.key not in live]
            if not failed:
                continue
            counts["failed"] += len(failed)
            reason = failure_reason(element, state or "(no longer listed by sacct)",
                                    f"{len(failed)} of its {len(jobs)} jobs not stored")
            failures.append(reason)
            if state != "COMPLETED":
                for job in failed:
                    store.record_failure(job, reason)
        statuses.append(ArrayStatus(submission, counts, failures))
    return statuses


def cancel_live(results: Path) -> list[str]:
    """Cancels the arrays from this results folder that still have elements queued or
    running; returns their ids."""
    earlier = submissions(results)
    states = queue_states(s.array for s in earlier) if earlier else {}
    live = [s.array for s in earlier
            if any(is_live(states.get(e.id), s.submitted) for e in s.elements)]
    cancel(live)
    return live
