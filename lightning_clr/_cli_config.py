"""Reading a LightningCLI YAML for the ``lightning-clr`` command (:mod:`lightning_clr.cli`, and its ``check``,
:mod:`lightning_clr.check`): the file as LightningCLI reads it, its ``trainer:`` section, and the objects its
``class_path`` + ``init_args`` mappings name (nested ones too, e.g. a schedule given to ``ScheduledLR``). PyYAML
is imported on first use only, so ``lightning-clr --help`` stays fast.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

__all__ = ["PreviewError"]


class PreviewError(ValueError):
    """A config or a run length that the preview cannot use; the message says what to change."""


# ---------------------------------------------------------------------------------------------- YAML
def _yaml_loader() -> Any:
    try:
        import yaml
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise PreviewError("Reading a config needs PyYAML: pip install 'lightning-clr[cli]'") from error

    class Loader(yaml.SafeLoader):
        """YAML 1.1 reads ``1e-3`` as a string; LightningCLI (jsonargparse) reads it as a float, and so do we."""

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return yaml, Loader


def _read_config(path: str) -> dict[str, Any]:
    yaml, loader = _yaml_loader()
    try:
        with open(path, encoding="utf-8") as file:
            config = yaml.load(file, Loader=loader)
    except OSError as error:
        raise PreviewError(f"Cannot read the config {path!r}: {error.strerror or error}.") from error
    except yaml.YAMLError as error:
        raise PreviewError(f"The config {path!r} is not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise PreviewError(f"Expected the config {path!r} to be a YAML mapping (with a `trainer:` section), "
                           f"but got {type(config).__name__}.")
    return config


def _trainer_section(config: dict[str, Any], path: str) -> dict[str, Any]:
    section = config.get("trainer")
    if section is None and isinstance(config.get("fit"), dict):  # a config of the whole CLI: `fit: trainer: ...`
        section = config["fit"].get("trainer")
    if not isinstance(section, dict):
        raise PreviewError(f"The config {path!r} has no `trainer:` section, so no `trainer.callbacks` to preview.")
    return section


# ---------------------------------------------------------------------------------------------- classes
def _import_class(class_path: str) -> Any:
    module_name, _, name = class_path.rpartition(".")
    module = importlib.import_module(module_name or "lightning_clr")
    try:
        return getattr(module, name)
    except AttributeError as error:
        raise ImportError(f"module {module.__name__!r} has no attribute {name!r}") from error


def _instantiate(value: Any, where: str) -> Any:
    """Builds ``{class_path, init_args}`` mappings (nested ones too, e.g. a schedule given to ScheduledLR)."""
    if isinstance(value, list):
        return [_instantiate(item, where) for item in value]
    if not isinstance(value, dict):
        return value
    if "class_path" not in value:
        return {key: _instantiate(item, f"{where}.{key}") for key, item in value.items()}
    class_path = value["class_path"]
    unknown = sorted(set(value) - {"class_path", "init_args", "dict_kwargs"})
    if unknown:
        raise PreviewError(f"{where}: unexpected keys {unknown} next to class_path {class_path!r}; put the "
                           "arguments under `init_args:`.")
    try:
        cls = _import_class(str(class_path))
    except ImportError as error:
        raise PreviewError(f"{where}: cannot import {class_path!r} ({error}).") from error
    arguments = {**(value.get("init_args") or {}), **(value.get("dict_kwargs") or {})}
    arguments = {key: _instantiate(item, f"{where}.{key}") for key, item in arguments.items()}
    try:
        return cls(**arguments)
    except TypeError as error:
        raise PreviewError(f"{where}: {class_path}({_args_text(arguments)}) is missing or given a wrong argument: "
                           f"{error}.") from error
    except ValueError as error:
        raise PreviewError(f"{where}: {class_path}: {error}") from error


def _args_text(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in arguments.items())
