"""Reading YAML files people write by hand, with errors that say where.

Two departures from PyYAML's defaults, both to spare people surprises:
- YAML 1.2 booleans: only `true`/`false` are booleans. Under YAML 1.1, a key `on:` or a
  scene named `off` would silently become True/False.
- A key written twice in one mapping is an error naming both lines; PyYAML keeps the
  last one without a word.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class YamlError(ValueError):
    """The file cannot be read or parsed; the message names the file and the line."""


class _Loader(yaml.SafeLoader):
    pass


# Replace the YAML 1.1 bool resolver (yes/no/on/off) with YAML 1.2's true/false only.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from None
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} is written twice (first on line {lines[key] + 1})",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def loads(text: str, source: str = "<text>") -> Any:
    """Parse YAML text; raise YamlError naming `source` and the line."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise YamlError(f"{source}: not valid YAML{where}: {reason}") from None
    except RecursionError:
        raise YamlError(f"{source}: not valid YAML: nested too deeply") from None


def load(path: Path) -> Any:
    """Read and parse a YAML file; raise YamlError naming the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise YamlError(f"{path}: cannot read the file: it is not UTF-8 text") from None
    except OSError as exc:
        raise YamlError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    return loads(text, str(path))
