"""Fuzzing the files people write: scene/routine folders and the config file.

Hypothesis writes random YAML documents, binary junk, and valid files mutated (wrong
types, missing keys, huge numbers, NaN/inf, unicode, deep nesting, truncation, YAML
tags and anchors). `load_library` and `load_settings` either succeed or raise ConfigError
whose every problem names the file; nothing else ever comes out. A subset also goes
through `ambiance check` in-process: exit code 0 or 1, and never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ambiance import cli
from ambiance.config import load_settings
from ambiance.core.scenes import Library, builtin_scenes_dir, load_library
from ambiance.errors import ConfigError


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        # No "explain" phase: its line tracing makes PyYAML on deep documents crawl.
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        derandomize=True,  # the same files on every run: CI is repeatable
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,  # tmp_path: each example makes its own folder
        ],
    )


BUILTIN = {
    p.name: yaml.safe_load(p.read_text()) for p in sorted(builtin_scenes_dir().glob("*.yaml"))
}
CONFIG: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8321,
    "log_level": "info",
    "scenes": [],
    "rooms": {
        "bedroom": {
            "title": "Bedroom",
            "routine": "classic",
            "lights": {"backend": "virtual", "lights": ["ceiling", {"name": "lamp"}]},
            "phones": [{"name": "sams-pixel", "mode": "priority_only"}],
        },
        "living": {
            "routine": "taster",
            "lights": {"backend": "hue", "bridge": "192.168.1.2", "group": "Living"},
        },
    },
    "devices": {"retry_initial": 0.5, "retry_max": 2, "settle_timeout": 1},
    "mqtt": {"host": "localhost", "port": 1883},
}

# --- strategies ----------------------------------------------------------------------

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | text
    | st.sampled_from(["5m", "1h", "untimed", "on", "off", "yes", "~", "~nobody/x", "0x1F", ""])
)
junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(text, st.integers(), st.booleans()), children, max_size=4)
    ),
    max_leaves=20,
)
RAW_SNIPPETS = [
    "!!python/object/apply:os.system ['true']",
    "&a [*a]",
    "{a: 1, a: 2}",
    "<<: *nope",
    "? [1, 2]\n: x",
    "\t\tbad: indent",
    "key: 'unterminated",
    "%YAML 9.9\n---",
    "--- 1\n--- 2",
    "[" * 3000 + "]" * 3000,
    "{a: " * 2000 + "1" + "}" * 2000,
    "- " * 1500 + "x",
    "\x00\x01",
    "\ufeff\u202e\U0001f486",
    "9" * 5000,
]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*prefix, index))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """A deep copy of `base` with one to four changes."""
    doc: Any = yaml.safe_load(yaml.safe_dump(base))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(list(_paths(doc))))
        new = draw(junk)
        if not path:
            doc = new if draw(st.integers(0, 9)) == 0 else doc
            continue
        parent = _get(doc, path[:-1])
        action = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "add"]))
        if action == "replace":
            parent[path[-1]] = new
        elif action == "delete":
            del parent[path[-1]]
        elif action == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        elif isinstance(parent, dict):
            parent[draw(text)] = new
        else:
            parent.append(new)
    return doc


def as_text(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@st.composite
def file_bytes(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "random", "raw", "binary"]))
    if kind == "mutated":
        content = as_text(draw(mutated(base)))
    elif kind == "random":
        content = as_text(draw(junk))
    elif kind == "binary":
        return draw(st.binary(max_size=500))
    else:
        content = as_text(base)
    if kind == "raw" or draw(st.integers(0, 5)) == 0:
        # Raw damage to the text: a snippet spliced in, or the file cut short.
        at = draw(st.integers(0, len(content)))
        if draw(st.booleans()):
            content = content[:at] + draw(st.sampled_from(RAW_SNIPPETS)) + content[at:]
        else:
            content = content[:at]
    return content.encode("utf-8", errors="surrogatepass")


_counter = itertools.count()


def fresh(tmp_path: Path) -> Path:
    folder = tmp_path / f"example-{next(_counter)}"
    folder.mkdir()
    return folder


def assert_names_files(exc: ConfigError, *places: Path) -> None:
    assert exc.problems
    for problem in exc.problems:
        assert problem.startswith(tuple(str(p) for p in places)), problem


def try_library(folders: list[Path], *places: Path) -> Library | None:
    try:
        library = load_library(folders)
    except ConfigError as exc:
        assert_names_files(exc, *places)
        return None
    for routine in library.routines.values():
        for stage in routine.stages:
            assert stage.scene in library.scenes
    return library


# --- scenes and routines ---------------------------------------------------------------


@fuzz(120)
@given(
    name=st.sampled_from(sorted(BUILTIN)),
    data=st.data(),
)
def test_scene_files_load_or_say_which_file(tmp_path: Path, name: str, data: st.DataObject) -> None:
    folder = fresh(tmp_path)
    content = data.draw(file_bytes(BUILTIN[name]))
    (folder / name).write_bytes(content)
    if data.draw(st.booleans()):
        (folder / "second.yml").write_bytes(data.draw(file_bytes(BUILTIN["scenes.yaml"])))
    # Alone, and over the built-ins (as a user's folder is used).
    try_library([folder], folder)
    try_library([builtin_scenes_dir(), folder], folder, builtin_scenes_dir())


def test_a_folder_under_an_unknown_home_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_library([Path("~nobody-of-this-machine/scenes")])
    assert caught.value.problems == [
        "~nobody-of-this-machine/scenes: scenes folder does not exist (no such user's home)"
    ]


# --- the config file ------------------------------------------------------------------


@fuzz(150)
@given(content=file_bytes(CONFIG))
def test_config_files_load_or_say_which_file(tmp_path: Path, content: bytes) -> None:
    folder = fresh(tmp_path)
    path = folder / "config.yaml"
    path.write_bytes(content)
    try:
        load_settings(path, data_dir=folder)
    except ConfigError as exc:
        assert_names_files(exc, path)


@pytest.mark.parametrize("text", ["1: x\n", "true: 8321\n", "1.5: x\n"])
def test_a_top_level_key_that_is_not_text_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, data_dir=tmp_path)
    assert_names_files(caught.value, path)


# --- `ambiance check` ------------------------------------------------------------------


@fuzz(60)
@given(config=file_bytes(CONFIG), scenes=file_bytes(BUILTIN["classic.yaml"]))
def test_ambiance_check_exits_0_or_1_without_a_traceback(
    tmp_path: Path, config: bytes, scenes: bytes
) -> None:
    folder = fresh(tmp_path)
    (folder / "scenes").mkdir()
    (folder / "scenes" / "mine.yaml").write_bytes(scenes)
    (folder / "config.yaml").write_bytes(config)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(
            [
                "check",
                "--config",
                str(folder / "config.yaml"),
                "--data-dir",
                str(folder / "data"),
                "--scenes",
                str(folder / "scenes"),
            ]
        )
    said = f"exit {code}; stdout: {out.getvalue()[:500]!r}; stderr: {err.getvalue()[:2000]!r}"
    assert code in (0, 1), said
    assert "Traceback" not in err.getvalue(), said
    if code == 0:
        assert out.getvalue().startswith("ok: "), said
    else:
        assert err.getvalue().startswith("error: "), said
