"""``lightning-clr check CONFIG.yaml``: validate the lightning_clr part of a LightningCLI config, before a run.

LightningCLI reports a typo in a callback's ``class_path`` or a bad argument value under its usage text and
two chained tracebacks. This check reads the same YAML and prints one line per problem, with a "did you
mean" for class and argument names and the valid forms for values::

    $ lightning-clr check run.yaml
    run.yaml: trainer.callbacks[0]: no class lightning_clr.CycleLR; did you mean lightning_clr.CyclicLR?
    run.yaml: trainer.callbacks[1] (lightning_clr.OneCycleLR): Expected total_steps to be ..., but got '3 weeks'.

It checks every ``class_path`` under ``trainer.callbacks`` that names lightning_clr (or looks like it does),
nested ones too (a schedule given to ``ScheduledLR``): that the class exists, that every ``init_args`` key
is one of its arguments and that no required one is missing, and that the callback builds with these
values; that no ``lr_scheduler`` is configured next to a schedule callback, and that
``trainer.enable_checkpointing`` is not false next to ``SnapshotCheckpoint`` (Lightning refuses that pair with a
message about ``ModelCheckpoint``, before any lightning_clr code runs). Other callbacks, the model
and the data are not checked (LightningCLI does that when it runs).
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

__all__ = ["check_config"]

_LENGTH_ARGUMENTS = ("step_size_up", "step_size_down", "total_steps", "first_cycle", "warmup")
_OPTIONAL_LENGTHS = ("warmup",)  # lengths that may be 0 (none)
_LENGTH_WORD = re.compile(r"^\s*(?P<number>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(?P<word>[A-Za-z]+)\s*$")


def _public_names() -> list[str]:
    import lightning_clr

    return sorted(getattr(lightning_clr, "__all__", []))


def _distance(a: str, b: str) -> int:
    """Optimal-string-alignment edit distance (insert, delete, substitute, swap two neighbours), ignoring case.

    Not ``difflib``: its similarity ratio ranks ``OneCycleLR`` above ``CyclicLR`` for the typo ``CycleLR`` (a longer
    name shares more letters), where one edit away is the better guess."""
    a, b = a.lower(), b.lower()
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def _closest(word: str, candidates: list[str]) -> list[str]:
    """The candidates nearest to ``word`` (at most two, all at the smallest distance), if near enough."""
    if not candidates:
        return []
    scored = sorted((_distance(word, c), c) for c in candidates)
    best = scored[0][0]
    if best > max(2, len(word) // 3):
        return []
    return [c for d, c in scored if d == best][:2]


def _did_you_mean(word: str, candidates: list[str], prefix: str = "") -> str:
    close = _closest(word, candidates)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"{prefix}{name}" for name in close) + "?"


def _looks_like_ours(class_path: str) -> bool:
    module = class_path.rpartition(".")[0]
    if not module:  # a bare name: ours if it is, or is close to, a lightning_clr name
        return bool(_closest(class_path, _public_names()))
    top = module.split(".")[0]
    return top == "lightning_clr" or bool(_closest(top, ["lightning_clr"]))


def _resolve(class_path: str) -> tuple[Any, str | None]:
    """``(the class, None)``, or ``(None, the problem)`` for a lightning_clr-like class path."""
    module_name, _, name = class_path.rpartition(".")
    module_name = module_name or "lightning_clr"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        suggestion = _did_you_mean(name, _public_names(), "lightning_clr.")
        return None, f"cannot import the module {module_name!r} of {class_path}{suggestion or '.'}"
    cls = getattr(module, name, None)
    if cls is None:
        names = _public_names()
        suggestion = _did_you_mean(name, names, "lightning_clr.")
        if not suggestion:
            classes = [n for n in names if n[:1].isupper() and not n.endswith("Error")]
            suggestion = ". The classes are lightning_clr." + ", lightning_clr.".join(classes) + "."
        return None, f"no class {class_path}{suggestion}"
    if not inspect.isclass(cls):
        return None, f"{class_path} is not a class, so it cannot be a class_path."
    return cls, None


def _length_problem(name: str, value: Any) -> str | None:
    from lightning_clr.lengths import parse_length, parse_optional_length

    if value is None or value == "auto":
        return None
    try:
        # the callbacks' own parsers: a warm-up may be 0 (none)
        (parse_optional_length if name in _OPTIONAL_LENGTHS else parse_length)(value, name)
    except ValueError as error:
        message = str(error)
        match = _LENGTH_WORD.match(value) if isinstance(value, str) else None
        if match:
            unit = _closest(match["word"], ["steps", "epochs"])
            if unit:
                message += f" Did you mean {name}: '{match['number']} {unit[0]}'?"
        return message
    return None


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - a class without a readable signature
        return {}
    return {name: p for name, p in signature.parameters.items()
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}


def _build(value: Any) -> Any:
    """Builds nested ``class_path`` mappings (already checked) so a callback can be instantiated."""
    if isinstance(value, list):
        return [_build(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "class_path" not in value:
        return {key: _build(item) for key, item in value.items()}
    cls, _ = _resolve(str(value["class_path"]))
    arguments = {**(value.get("init_args") or {}), **(value.get("dict_kwargs") or {})}
    return cls(**{key: _build(item) for key, item in arguments.items()})


def _check_object(entry: dict[str, Any], where: str, problems: list[str]) -> Any:
    """Checks one ``{class_path, init_args}`` mapping; returns its class when it is ours and resolves."""
    class_path = str(entry["class_path"])
    if not _looks_like_ours(class_path):
        return None
    cls, problem = _resolve(class_path)
    if problem is not None:
        problems.append(f"{where}: {problem}")
        return None
    label = f"{where} ({class_path})"
    unknown_keys = sorted(set(entry) - {"class_path", "init_args", "dict_kwargs"})
    if unknown_keys:
        problems.append(f"{label}: unexpected keys {unknown_keys} next to class_path; put the arguments under "
                        "`init_args:`.")
    arguments = {**(entry.get("init_args") or {}), **(entry.get("dict_kwargs") or {})}
    if not isinstance(arguments, dict):
        problems.append(f"{label}: expected init_args to be a mapping, but got {arguments!r}.")
        return cls
    parameters = _parameters(cls)
    usable = dict(arguments)  # what the build check below gets: known arguments, bad lengths at their default
    can_build = True
    for key in arguments:
        if parameters and key not in parameters:
            hint = _did_you_mean(key, list(parameters)) or f". Its arguments are {', '.join(parameters)}."
            problems.append(f"{label}: unknown argument {key!r}{hint}")
            del usable[key]
    missing = [name for name, p in parameters.items() if p.default is inspect.Parameter.empty and name not in arguments]
    if missing:
        problems.append(f"{label}: missing required argument{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)} (under init_args).")
        can_build = False
    for key, item in arguments.items():
        if key in _LENGTH_ARGUMENTS and key in usable:
            length = _length_problem(key, item)
            if length is not None:
                problems.append(f"{label}: {length}")
                default = parameters[key].default if key in parameters else inspect.Parameter.empty
                usable[key] = 1 if default is inspect.Parameter.empty else default  # reported: check the rest
        count = len(problems)
        _check_nested(item, f"{where}.init_args.{key}", problems)
        can_build = can_build and len(problems) == count
    if can_build:
        _check_values(cls, usable, parameters, label, problems)
    return cls


def _check_nested(value: Any, where: str, problems: list[str]) -> None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_nested(item, f"{where}[{index}]", problems)
    elif isinstance(value, dict):
        if "class_path" in value:
            _check_object(value, where, problems)
        else:
            for key, item in value.items():
                _check_nested(item, f"{where}.{key}", problems)


def _check_values(cls: type, arguments: dict[str, Any], parameters: dict[str, inspect.Parameter], label: str,
                  problems: list[str]) -> None:
    """Builds the object; each argument a ValueError names is reported and set back to its default, then the
    build is retried, so that several bad values give several lines."""
    arguments = {key: _build(item) for key, item in arguments.items()}
    for _ in range(len(arguments) + 1):
        try:
            cls(**arguments)
            return
        except (ValueError, TypeError) as error:
            message = str(error)
            problems.append(f"{label}: {message}")
            named = [key for key in arguments if re.search(rf"\b{re.escape(key)}\b", message)]
            resettable = [key for key in named if parameters.get(key) is not None
                          and parameters[key].default is not inspect.Parameter.empty]
            if not named or len(resettable) < len(named):
                return  # a required argument is wrong (or the cause is unclear): nothing more to learn
            for key in resettable:
                arguments[key] = parameters[key].default


def check_config(path: str) -> tuple[list[str], list[str]]:
    """Checks the lightning_clr part of a LightningCLI YAML config.

    Args:
        path: the YAML file.

    Returns:
        ``(problems, checked)``: one line per problem (empty when the config is clean), and the class paths
        of the lightning_clr callbacks that were checked.

    Raises:
        lightning_clr.cli.PreviewError: if the file cannot be read or is not a LightningCLI config.
    """
    from lightning_clr import ScheduleCallback, SnapshotCheckpoint
    from lightning_clr._cli_config import PreviewError, _read_config, _trainer_section

    config = _read_config(path)
    trainer = _trainer_section(config, path)
    entries = trainer.get("callbacks") or []
    if isinstance(entries, (dict, str)):
        entries = [entries]
    if not isinstance(entries, list):
        raise PreviewError(f"Expected trainer.callbacks in {path!r} to be a list, but got {entries!r}.")
    problems: list[str] = []
    checked: list[str] = []
    schedules = False
    snapshot_at: list[str] = []
    for position, entry in enumerate(entries):
        where = f"trainer.callbacks[{position}]"
        entry = {"class_path": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "class_path" not in entry:
            problems.append(f"{where}: expected a mapping with `class_path` (and `init_args`), but got {entry!r}.")
            continue
        cls = _check_object(entry, where, problems)
        if cls is not None:
            checked.append(str(entry["class_path"]))
            schedules = schedules or issubclass(cls, ScheduleCallback)
            if issubclass(cls, SnapshotCheckpoint):
                snapshot_at.append(where)
    sections = [config, config.get("fit") if isinstance(config.get("fit"), dict) else {}]
    if schedules and any(isinstance(s, dict) and s.get("lr_scheduler") for s in sections):
        problems.append("lr_scheduler: a lightning_clr schedule callback already sets the rate at every step; "
                        "remove the `lr_scheduler:` section (two schedulers would fight over the rate).")
    if snapshot_at and trainer.get("enable_checkpointing") is False:
        problems.append(f"trainer.enable_checkpointing: false cannot go with SnapshotCheckpoint ({snapshot_at[0]}), "
                        "which is a Lightning checkpoint callback; remove `enable_checkpointing: false` (with a "
                        "checkpoint callback given, Lightning adds no default ModelCheckpoint, so the snapshots "
                        "are the only checkpoints).")
    return [f"{path}: {line}" for line in problems], checked
