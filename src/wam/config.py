"""One config style for every command: a tree of dataclasses, YAML presets, dotted CLI overrides.

    cfg = parse_config(CollectConfig, ["--config", "configs/x.yaml", "--episodes", "5"])
    cfg = parse_config(TrainConfig, ["--policy.paradigm=joint"])   # nested fields are dotted

Precedence: dataclass defaults < YAML file (`--config`) < flags. Unknown keys and values of the
wrong type are refused with a `ConfigError` naming the key (and the closest valid ones).
`save_config` writes the resolved tree as YAML next to what it produced.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from wam.errors import ConfigError

T = TypeVar("T")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def flat_keys(cls: type, prefix: str = "") -> dict[str, Any]:
    """Every leaf field as 'a.b.c' -> its type."""
    out: dict[str, Any] = {}
    for name, (_, hint) in _fields(cls).items():
        if dataclasses.is_dataclass(hint):
            out.update(flat_keys(hint, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = hint
    return out


@dataclasses.dataclass(frozen=True)
class Retired:
    """A key a config class no longer has, still read from old configs: `RETIRED = {"old": Retired(...)}`
    on the dataclass maps a value of the old key (of type `old_type`) to a value of `new` (a dotted path
    below the same class: a field moved into a section is `Retired(t, "section.field", identity, note)`).
    `new=""`: the key is gone; `convert` checks the value (raising ConfigError on one that mattered) and it is
    dropped.
    The note is printed once per process; keys retired together share it, so one line covers them."""

    old_type: type
    new: str
    convert: Callable[[Any], Any]
    note: str


_NOTED: set[str] = set()


def _retired(cls: type, key: str, value: Any) -> tuple[str, Any] | None:
    """(new key, new value) for a retired key of the class at `key`'s parent, printing its note once."""
    *path, leaf = key.split(".")
    node: Any = cls
    for part in path:
        fields = _fields(node) if dataclasses.is_dataclass(node) else {}
        if part not in fields:
            return None
        node = fields[part][1]
    old = getattr(node, "RETIRED", {}).get(leaf)
    if old is None:
        return None
    if old.note not in _NOTED:  # once per note: keys retired together share one (one line for all)
        _NOTED.add(old.note)
        print(f"note: '{key}' is retired: {old.note}", file=sys.stderr)
    value = old.convert(_coerce(key, value, old.old_type))
    return (".".join([*path, old.new]) if old.new else ""), value


def _coerce(key: str, value: Any, hint: Any, where: str = "") -> Any:
    """Turn a CLI string (or YAML value) into the field's type, or explain why not.

    `where` names the source in the message ('--' for a flag, 'file.yaml: ' for a YAML file). A YAML
    boolean is not a number, nor a list or mapping a scalar: such values are refused, not converted.
    """
    name = f"{where or '--'}{key}"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None or (isinstance(value, str) and value.lower() in {"none", "null"}):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0], where)
    if origin in (tuple, list):
        if isinstance(value, dict) or value is None:
            raise ConfigError(f"{name}: {value!r} is not a list")
        items = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v.strip()]
        item_type = args[0] if args else str
        return origin(_coerce(key, v, item_type, where) for v in items)
    type_name = getattr(hint, "__name__", str(hint))
    if hint in (bool, int, float, str) and (value is None or isinstance(value, (list, tuple, dict))):
        raise ConfigError(f"{name}: {value!r} is not a valid {type_name} (a single value is expected)")
    if hint in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{name}: {str(value).lower()} is a boolean, not a valid {type_name}")
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in _TRUE | _FALSE:
                return str(value).lower() in _TRUE
            raise ValueError
        if hint in (int, float, str):
            if hint is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return hint(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name}: {value!r} is not a valid {type_name}") from None
    return value


def apply_overrides(cfg: T, overrides: dict[str, Any], where: str = "") -> T:
    """A copy of `cfg` with dotted keys set ('policy.paradigm': 'joint'); `where` names their source in
    errors ('' = command-line flags, or 'path.yaml: ')."""
    keys = flat_keys(type(cfg))
    for key, value in overrides.items():
        renamed = _retired(type(cfg), key, value) if key not in keys else None
        if renamed is not None:
            key, value = renamed
            if not key:  # retired without a successor: checked by its convert, then dropped
                continue
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(keys)}"
            raise ConfigError(f"{where}unknown option '{key}'{hint}")
        cfg = _set(cfg, key.split("."), _coerce(key, value, keys[key], where))
    return cfg


def _set(node: Any, path: list[str], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(node, **{path[0]: value})
    return dataclasses.replace(node, **{path[0]: _set(getattr(node, path[0]), path[1:], value)})


def contradictions(ours: dict, theirs: dict, default: dict, prefix: str = "") -> list[str]:
    """The keys of `ours` set away from their `default` to a value `theirs` (the run a setting is taken from) does
    not have, as "prefix.key=ours (the world model has theirs)": what adopting `theirs` would override silently.
    A value set equal to the default cannot be told from the default, so it is never one of them."""
    return [f"{prefix}{k}={ours[k]} (the world model has {theirs[k]})" for k in ours
            if ours[k] != default[k] and ours[k] != theirs[k]]


def changed_since(path: str | Path, cfg: Any) -> list[str]:
    """What `cfg` sets otherwise than the config saved at `path` (a run's config.yaml), as "key: saved -> now", and
    the keys the saved file has not got (written before they existed: a resumed run takes today's defaults there)."""
    saved = flatten_tree(read_yaml_tree(path))
    now = flatten_tree(yaml.safe_load(yaml.safe_dump(to_dict(cfg))))  # as it would be saved: tuples as lists
    changed = [f"{k}: {saved[k]!r} -> {v!r}" for k, v in now.items() if k in saved and saved[k] != v]
    new = [f"{k}={v!r}" for k, v in now.items() if k not in saved]
    return changed + ([f"not in the saved config, taken as {', '.join(new)}"] if new else [])


def flatten_tree(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1} (lists and other values are leaves)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten_tree(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_overrides(argv: list[str]) -> dict[str, str]:
    """['--a.b=1', '--c', '2', '--flag'] -> {'a.b': '1', 'c': '2', 'flag': 'true'}."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument '{arg}': options look like --key=value")
        key, eq, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            else:
                value = "true"
        out[key] = value
        i += 1
    return out


def read_yaml_tree(path: str | Path) -> dict:
    """A YAML file of options as a (nested) mapping, or a ConfigError naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such file {path}")
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of options (key: value), "
                          f"not a {type(tree).__name__}")
    return tree


def _checked(cfg: T) -> T:
    check = getattr(cfg, "check", None)
    if callable(check):
        check()
    return cfg


def load_config(cls: type[T], path: str | Path) -> T:
    """A config saved as YAML (e.g. the `config.yaml` next to a checkpoint); errors name the file."""
    if not Path(path).is_file():
        raise ConfigError(f"{path} is missing (every run and checkpoint folder holds its config.yaml)")
    return _checked(apply_overrides(cls(), flatten_tree(read_yaml_tree(path)), where=f"{path}: "))


def parse_config(cls: type[T], argv: list[str]) -> T:
    """Defaults, then the YAML file given by --config, then the remaining flags."""
    overrides = parse_overrides(argv)
    cfg = cls()
    preset = overrides.pop("config", None)
    if preset:
        path = Path(preset)
        if not path.is_file():
            raise ConfigError(f"--config: no such file {path}")
        cfg = apply_overrides(cfg, flatten_tree(read_yaml_tree(path)), where=f"{path}: ")
    return _checked(apply_overrides(cfg, overrides))


def describe(cls: type) -> str:
    """The options of a config class with their defaults, for --help."""
    default = cls()
    lines = []
    for key in flat_keys(cls):
        value: Any = default
        for part in key.split("."):
            value = getattr(value, part)
        lines.append(f"  --{key}={value}")
    return "\n".join(lines)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (loadable again with --config)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
