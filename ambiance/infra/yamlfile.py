"""Reading YAML files people write by hand, with errors that say where.

Departures from PyYAML's defaults, to spare people surprises:
- YAML 1.2 booleans: only `true`/`false` are booleans. Under YAML 1.1, a key `on:` or a
  scene named `off` would silently become True/False.
- A key written twice in one mapping is an error naming both lines; PyYAML keeps the
  last one without a word.
- The file is read only up to a size limit the caller gives (infra/files.py), and its
  aliases may stand for at most `MAX_ALIAS_NODES` values in all: a "billion laughs"
  (anchors x1..x8, each a list of nine of the one before) is 80 lines that expand to 43
  million values, and anything that walks or prints them (validation, an error message
  showing the value) takes minutes and gigabytes. It is refused before anything is built
  from it, in milliseconds, naming the anchor and its line.
- A number or date that Python cannot make (`0x_`, 5,000 digits, `2024-13-45`) is an
  error naming its line, not a ValueError from deep inside PyYAML.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ambiance.errors import brief, clip
from ambiance.infra import files

# What aliases may add to a file, in values: each list, mapping and scalar is one, and a
# scalar's text one more per TEXT_PER_VALUE characters (an alias of a long text, used a
# thousand times, is that text a thousand times over). A hand-written file that reuses a
# block of lights or guidance here and there adds a few hundred; the largest file we read
# holds about this many values written out.
MAX_ALIAS_NODES = 100_000
TEXT_PER_VALUE = 64


class YamlError(ValueError):
    """The file cannot be read or parsed; the message names the file and the line."""


class _Refused(yaml.YAMLError):
    """Valid YAML that we do not read: an alias bomb, or a value that contains itself."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _Loader(yaml.SafeLoader):
    """The safe loader, checking what a document's aliases stand for before building it."""

    def __init__(self, stream: str, max_alias_nodes: int) -> None:
        super().__init__(stream)
        self.max_alias_nodes = max_alias_nodes

    def compose_document(self) -> yaml.Node | None:
        # PyYAML's own, but the anchors are checked before they are forgotten. Counting
        # after composing costs nothing for a file without anchors, and composing never
        # expands an alias (it is the same node again), so a bomb is still small here.
        self.get_event()  # type: ignore[no-untyped-call]  # DOCUMENT-START
        node = self.compose_node(None, None)  # type: ignore[arg-type]
        self.get_event()  # type: ignore[no-untyped-call]  # DOCUMENT-END
        anchors, self.anchors = self.anchors, {}
        if anchors and node is not None:
            _Expansion(anchors, self.max_alias_nodes).weigh(node)
        return node


class _Expansion:
    """What the aliases of one document stand for, counted on its nodes.

    Composing makes an alias the very node of its anchor, so a node met a second time
    in the walk is an alias: it adds its weight (its nodes with every alias in it
    expanded, each counted once thanks to the memo) to what the aliases stand for.
    """

    def __init__(self, anchors: dict[Any, yaml.Node], limit: int) -> None:
        self.names = {id(node): str(name) for name, node in anchors.items()}
        self.limit = limit
        self.weights: dict[int, int] = {}  # id(node) -> its weight, for nodes walked
        self.walking: set[int] = set()  # the lists and mappings the walk is inside
        self.added = 0

    def weigh(self, node: yaml.Node) -> int:
        key = id(node)
        weight = self.weights.get(key)
        if weight is not None:  # an alias
            self.added += weight
            if self.added > self.limit:
                raise _Refused(
                    f"too many aliases: with an alias of &{self._name(node)} (defined here), "
                    f"the file's aliases stand for more than {self.limit:,} values in all; "
                    "write the values out instead",
                    node.start_mark,
                )
            return weight
        if key in self.walking:
            name = self._name(node)
            raise _Refused(f"&{name} holds *{name}: a value cannot contain itself", node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            weight = 1 + len(node.value) // TEXT_PER_VALUE
        else:
            self.walking.add(key)
            weight = 1
            if isinstance(node, yaml.SequenceNode):
                for child in node.value:
                    weight += self.weigh(child)
            else:
                for item, value in node.value:
                    weight += self.weigh(item) + self.weigh(value)
            self.walking.discard(key)
        self.weights[key] = weight
        return weight

    def _name(self, node: yaml.Node) -> str:
        return clip(self.names.get(id(node), "?"), 40)


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
                f"key {brief(key)} is written twice (first on line {lines[key] + 1})",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _checked(construct: Any, problem: str) -> Any:
    """PyYAML's constructor `construct`, with Python's ValueError made an error at the line.

    `problem` is the message, with `{value}` (the text, shortened) and `{reason}`.
    """

    def checked(loader: _Loader, node: yaml.ScalarNode) -> Any:
        try:
            return construct(loader, node)
        except ValueError as exc:
            message = problem.format(value=brief(node.value), reason=exc)
            raise yaml.constructor.ConstructorError(None, None, message, node.start_mark) from None

    return checked


_Loader.add_constructor(
    "tag:yaml.org,2002:int",
    _checked(
        yaml.SafeLoader.construct_yaml_int,
        "{value} is not a number we can read (a malformed one, or more than 4,300 digits)",
    ),
)
_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    _checked(yaml.SafeLoader.construct_yaml_timestamp, "{value} is not a valid date: {reason}"),
)


def loads(text: str, source: str = "<text>", max_alias_nodes: int = MAX_ALIAS_NODES) -> Any:
    """Parse YAML text; raise YamlError naming `source` and the line."""
    try:
        return _parse(text, max_alias_nodes)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        reason = clip(getattr(exc, "problem", None) or str(exc), 200)  # may quote a tag
        lead = "refused" if isinstance(exc, _Refused) else "not valid YAML"
        raise YamlError(f"{source}: {lead}{where}: {reason}") from None
    except RecursionError:
        raise YamlError(f"{source}: not valid YAML: nested too deeply") from None


def _parse(text: str, max_alias_nodes: int) -> Any:
    loader = _Loader(text, max_alias_nodes)  # reads the text: may raise a ReaderError
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load(
    path: Path, max_bytes: int, kind: str = "a YAML file", max_alias_nodes: int = MAX_ALIAS_NODES
) -> Any:
    """Read and parse a YAML file of at most `max_bytes`; raise YamlError naming the file
    (and the line, the size and the limit, as they apply)."""
    try:
        text = files.read_text(path, max_bytes, kind)
    except FileNotFoundError as exc:
        raise YamlError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except files.UnreadableFile as exc:
        raise YamlError(str(exc)) from None
    return loads(text, str(path), max_alias_nodes)
