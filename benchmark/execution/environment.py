"""What ran a job: package versions, device, git commit. Stored beside every result."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

PACKAGES = ("torch", "torchvision", "timm", "numpy", "opencv-contrib-python-headless", "dlib-bin",
            "scikit-learn", "scikit-image", "pandas")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def describe(device: str) -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "device": device,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "git_commit": git_commit(),
        # CPU float reductions follow the thread count: equal counts, equal bits
        "cpu_threads": sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None,
        "packages": {name: _version(name) for name in PACKAGES},
    }


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions that compute bf16 natively


def _cpuinfo(*fields: str) -> str | None:
    """The value of the first /proc/cpuinfo line naming one of `fields` (Linux), else None."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((row for row in text.splitlines() if row.startswith(fields)), None)
    return line.split(":", 1)[1].strip() if line else None


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags (Linux /proc/cpuinfo); None where they cannot be read."""
    line = _cpuinfo("flags", "Features")
    return set(line.split()) if line else None


def cpu_name() -> str:
    """The processor's model name where the system says it (Linux), else platform's word."""
    return _cpuinfo("model name") or platform.processor()


def bf16_note(precision: str, device_type: str, flags: set[str] | None = None) -> str:
    """A warning when bf16 cannot pay: on a CPU without native bf16 instructions autocast is
    emulated, and trains slower than fp32 (measured 3x on an AVX2-only EPYC). '' otherwise."""
    if precision != "bf16" or device_type != "cpu":
        return ""
    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return ("warning: bf16 on a CPU whose features cannot be read here: it is fast only "
                f"with native bf16 instructions ({', '.join(BF16_FLAGS)})")
    if flags & set(BF16_FLAGS):
        return ""
    return (f"warning: this CPU has no native bf16 instructions ({', '.join(BF16_FLAGS)}): "
            "bf16 autocast is emulated and usually trains slower than fp32")
