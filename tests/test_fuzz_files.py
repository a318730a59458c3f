"""Fuzzing the files people write: scene/routine folders and the config file.

Hypothesis writes random YAML documents, binary junk, and valid files mutated (wrong
types, missing keys, huge numbers, NaN/inf, unicode, deep nesting, truncation, YAML
tags and anchors). `load_library` and `load_settings` either succeed or raise ConfigError
whose every problem names the file; nothing else ever comes out. A subset also goes
through `ambiance check` in-process: exit code 0 or 1, and never a traceback.

Hostile files last: alias bombs, files of 10 GiB or without end, values of 500 KB. Those
that used to take gigabytes run in a child with 1 GiB of memory and a timeout.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import subprocess
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
from tests.hostile import alias_anchors, run_ambiance, sparse_file


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


# --- hostile files: what one costs never grows with it ---------------------------------

MINIMAL_CONFIG = "rooms:\n  bedroom: {lights: {backend: virtual}}\n"


def check(folder: Path, config: Path, *scenes: Path) -> subprocess.CompletedProcess[str]:
    """`ambiance check` in a child with 1 GiB of memory and a timeout of seconds."""
    more = [arg for folder in scenes for arg in ("--scenes", str(folder))]
    return run_ambiance("check", "--config", str(config), "--data-dir", str(folder / "data"), *more)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    said = f"exit {result.returncode}; stderr: {result.stderr[:2000]!r}"
    assert result.returncode == 1, said
    lines = result.stderr.splitlines()
    assert len(lines) == 1, said
    assert lines[0].startswith("error: "), said
    assert len(lines[0]) < 400, said
    return lines[0]


BOMBS = {
    # Where the aliases are used: a tagged field (whose error showed the whole value),
    # a list field, and a scene's tracks, the same long text repeated (valid: it loaded).
    "config, tagged field": (
        "config.yaml",
        "anchors:\n"
        + alias_anchors(indent="  ")
        + "rooms:\n  bedroom:\n    lights: {backend: *x8}\n",
    ),
    "config, list field": (
        "config.yaml",
        "anchors:\n" + alias_anchors(indent="  ") + "rooms:\n  bedroom:\n    phones: *x8\n",
    ),
    "scenes, a long text repeated": (
        "scenes/mine.yaml",
        "scenes:\n  calm:\n    lights: {brightness: 10}\n    music:\n      tracks:\n"
        f"        - &t {'x' * 200_000}\n" + "        - *t\n" * 1_000,
    ),
}


@pytest.mark.parametrize("where", sorted(BOMBS))
def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path, where: str) -> None:
    name, text = BOMBS[where]
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    config = path if name == "config.yaml" else tmp_path / "config.yaml"
    if config != path:
        config.write_text(MINIMAL_CONFIG)
    line = one_error_line(check(tmp_path, config, *([path.parent] if config != path else [])))
    assert line.startswith(f"error: {path}: refused (line "), line
    assert "too many aliases" in line, line


@pytest.mark.parametrize("kind", ["config", "scenes"])
def test_a_file_over_its_size_limit_is_refused_without_reading_it(
    tmp_path: Path, kind: str
) -> None:
    # 10 GiB that take no disk: reading it whole would fail under the child's 1 GiB.
    (tmp_path / "scenes").mkdir()
    config = tmp_path / "config.yaml"
    if kind == "config":
        path = sparse_file(config, 10 * 2**30)
        limit = "1 MiB (1,048,576 bytes) for a config file"
    else:
        config.write_text(MINIMAL_CONFIG)
        path = sparse_file(tmp_path / "scenes" / "huge.yaml", 10 * 2**30)
        limit = "256 KiB (262,144 bytes) for a scenes file"
    line = one_error_line(check(tmp_path, config, tmp_path / "scenes"))
    assert line == (
        f"error: {path}: the file is too large to read: 10,737,418,240 bytes, "
        f"over the limit of {limit}"
    )


def test_a_config_that_never_ends_is_read_only_to_its_limit(tmp_path: Path) -> None:
    # /dev/zero says its size is 0: only reading at most the limit (and one more) stops.
    line = one_error_line(check(tmp_path, Path("/dev/zero")))
    assert "/dev/zero: the file is too large to read: more than 1,048,576 bytes" in line


HUGE = "x" * 500_000  # in a file under the size limit, where a message would quote it


@pytest.mark.parametrize(
    "config",
    [
        {"rooms": {"bedroom": {"lights": {"backend": HUGE}}}},
        {"rooms": {HUGE: {}}},
        {"rooms": {"bedroom": {HUGE: 1}}},
        {"rooms": {"bedroom": {"lights": {"backend": "virtual", "lights": [{HUGE: 1}]}}}},
        {"mqtt": {"host": "localhost", "base_topic": "#" + HUGE}},
        {"rooms": {"bedroom": {"routine": HUGE}}},
    ],
    ids=["tagged field", "room name", "unknown field", "nested key", "topic", "routine"],
)
def test_an_error_about_a_huge_value_stays_short(tmp_path: Path, config: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["check", "--config", str(path), "--data-dir", str(tmp_path / "d")])
    assert code == 1
    lines = err.getvalue().splitlines()
    assert lines, out.getvalue()
    for line in lines:
        assert line.startswith("error: "), line[:1000]
        assert len(line) <= 400 + len("error: "), line[:1000]
