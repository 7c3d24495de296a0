"""Finds experiments: every module of the `experiments` package with a module-level SPEC."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from testbed.experiment import ExperimentSpec

DEFAULT_PACKAGE = "experiments"


@dataclass(frozen=True)
class Discovered:
    """The experiments found, and the modules that failed to import (name -> error)."""

    experiments: dict[str, ModuleType]
    broken: dict[str, str]


def discover(package: str = DEFAULT_PACKAGE) -> Discovered:
    """Import every module of `package`; keep those with a SPEC, report those that fail."""
    root = importlib.import_module(package)
    experiments: dict[str, ModuleType] = {}
    broken: dict[str, str] = {}
    for info in pkgutil.iter_modules(root.__path__):
        module_name = f"{package}.{info.name}"
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # a broken experiment must not hide the others
            broken[info.name] = f"{type(error).__name__}: {error}"
            continue
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, ExperimentSpec) and callable(getattr(module, "run", None)):
            experiments[spec.name] = module
    return Discovered(dict(sorted(experiments.items())), broken)


def spec_of(module: ModuleType) -> ExperimentSpec:
    spec = module.SPEC
    assert isinstance(spec, ExperimentSpec)
    return spec
