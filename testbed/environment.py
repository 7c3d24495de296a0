"""Records the machine a result was measured on: kernel, CPU, cores, versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

LIBRARIES = ("cryptography", "simpy", "rich", "matplotlib", "mininet")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def capture_environment() -> dict[str, object]:
    return {
        "kernel": platform.release(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "libraries": library_versions(),
    }
