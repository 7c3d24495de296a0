"""Records the machine a result was measured on: kernel, CPU, cores, versions."""

from __future__ import annotations

import hashlib
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


def middlebox_plugins() -> dict[str, object] | None:
    """The middlebox plugins in use ($MIDDLEBOX_PLUGINS): the variable, each model it added
    with its source, and the SHA-256 of each plugin file (what exactly ran); None if unset."""
    spec = os.environ.get("MIDDLEBOX_PLUGINS", "").strip()
    if not spec:
        return None
    from middleboxes.registry import PLUGIN_MODELS

    files: dict[str, str | None] = {}
    for entry in (item.strip() for item in spec.split(",") if item.strip()):
        if entry.endswith(".py"):
            try:
                files[entry] = hashlib.sha256(Path(entry).read_bytes()).hexdigest()
            except OSError:
                files[entry] = None
    return {"MIDDLEBOX_PLUGINS": spec, "models": dict(PLUGIN_MODELS), "sha256": files}


def capture_environment() -> dict[str, object]:
    environment: dict[str, object] = {
        "kernel": platform.release(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "libraries": library_versions(),
    }
    plugins = middlebox_plugins()
    if plugins is not None:
        environment["middlebox_plugins"] = plugins
    return environment
