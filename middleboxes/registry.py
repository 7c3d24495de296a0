"""Middlebox models by name, and the command-line chain syntax.

    strip-options(on=syn,ports=80|443),link(delay_ms=10,loss=0.01)

Models are separated by commas outside parentheses; parameters are key=value; a list value
separates its items with "|". Values are typed from the model's constructor; an unknown model
or parameter, or a value of the wrong type, raises MiddleboxConfigError naming it.

Extra models (a test's fault-injecting model, an experiment's own) come from plugins: the
environment variable MIDDLEBOX_PLUGINS lists, separated by commas, Python files or module
names; every Middlebox subclass they define is registered under its `name`. Engines started
in Mininet nodes inherit the variable, so the same models exist on both sides.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import typing
from pathlib import Path

from middleboxes.base import Middlebox, MiddleboxConfigError, span
from middleboxes.chain import Chain
from middleboxes.link import Link
from middleboxes.nat import Nat
from middleboxes.passthrough import Passthrough
from middleboxes.proxy_ack import ProxyAck
from middleboxes.resegment import Resegment
from middleboxes.seq_rewrite import SeqRewrite
from middleboxes.strip_options import StripOptions

MODELS: dict[str, type[Middlebox]] = {
    model.name: model for model in (
        Passthrough, StripOptions, SeqRewrite, Resegment, ProxyAck, Nat, Link
    )
}

PLUGINS_ENV = "MIDDLEBOX_PLUGINS"
PLUGIN_MODELS: dict[str, str] = {}  # model name -> the plugin (file or module) it came from


def load_plugins(spec: str | None = None) -> list[str]:
    """Register the models of the plugins in `spec` (default: $MIDDLEBOX_PLUGINS)."""
    text = os.environ.get(PLUGINS_ENV, "") if spec is None else spec
    added: list[str] = []
    for entry in (item.strip() for item in text.split(",")):
        if not entry:
            continue
        try:
            if entry.endswith(".py"):
                location = importlib.util.spec_from_file_location(Path(entry).stem, entry)
                if location is None or location.loader is None:
                    raise ImportError(f"cannot load {entry}")
                module = importlib.util.module_from_spec(location)
                location.loader.exec_module(module)
            else:
                module = importlib.import_module(entry)
        except (ImportError, OSError) as error:
            raise MiddleboxConfigError(f"middlebox plugin {entry!r}: {error}") from None
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Middlebox)
                    and value.__module__ == module.__name__ and value.name not in MODELS):
                MODELS[value.name] = value
                PLUGIN_MODELS[value.name] = entry
                added.append(value.name)
    return added


load_plugins()


def _split_top_level(text: str, separator: str = ",") -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise MiddleboxConfigError(f"unbalanced parentheses in {text!r}")
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise MiddleboxConfigError(f"unbalanced parentheses in {text!r}")
    parts.append(current)
    return [part.strip() for part in parts]


def _convert(model: str, key: str, text: str, kind: object) -> object:
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes"):
                return True
            if text.lower() in ("0", "false", "no"):
                return False
            raise ValueError(text)
        if typing.get_origin(kind) is tuple:
            (item_type, _ellipsis) = typing.get_args(kind)
            return tuple(item_type(item) for item in text.split("|") if item)
        value = kind(text)  # type: ignore[operator]
    except ValueError:
        raise MiddleboxConfigError(f"{model}: bad value {text!r} for {key}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise MiddleboxConfigError(f"{model}: {key} must be a finite number, got {text!r}")
    return value


def build_model(text: str) -> Middlebox:
    """One model from "name" or "name(key=value,...)"."""
    name, _, rest = text.partition("(")
    name = name.strip()
    if name not in MODELS:
        raise MiddleboxConfigError(f"unknown middlebox {name!r}; known: {', '.join(MODELS)}")
    model = MODELS[name]
    if rest and not rest.endswith(")"):
        raise MiddleboxConfigError(f"{name}: parameters must end with ')'")
    hints = typing.get_type_hints(model.__init__)
    accepted = [p for p in inspect.signature(model.__init__).parameters if p != "self"]
    arguments: dict[str, object] = {}
    for pair in _split_top_level(rest[:-1]) if rest[:-1].strip() else []:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or key not in accepted:
            raise MiddleboxConfigError(
                f"{name}: unknown parameter {key!r}; accepted: {', '.join(accepted)}"
            )
        arguments[key] = _convert(name, key, value.strip(), hints[key])
    return model(**arguments)


def parse_chain(text: str) -> Chain:
    """A chain from the command-line syntax; "" or "none" is an empty chain."""
    if text.strip() in ("", "none"):
        return Chain([])
    return Chain([build_model(part) for part in _split_top_level(text)])


def model_parameters(model: type[Middlebox]) -> list[tuple[str, str, str, str]]:
    """Each parameter of `model`: name, type, default and accepted range, for listings."""
    hints = typing.get_type_hints(model.__init__)
    rows = []
    for name, parameter in inspect.signature(model.__init__).parameters.items():
        if name == "self":
            continue
        kind = hints.get(name, str)
        if typing.get_origin(kind) is tuple:
            type_name = f"{typing.get_args(kind)[0].__name__}|..."
        else:
            type_name = getattr(kind, "__name__", str(kind))
        bounds = model.ranges.get(name)
        accepted = span(*bounds) if bounds else "|".join(model.choices.get(name, ()))
        default = parameter.default
        shown = "|".join(map(str, default)) if isinstance(default, tuple) else str(default)
        rows.append((name, type_name, shown, accepted))
    return rows
