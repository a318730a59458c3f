"""Scenes and routines: the loader's error messages, and the shipped library."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from ambiance.core.scenes import Library, builtin_scenes_dir, load_library, parse_duration
from ambiance.errors import ConfigError

# --- helpers -----------------------------------------------------------------------------

CALM: dict[str, Any] = {"lights": {"kelvin": 2400, "brightness": 25, "transition": 5}}


def stage(name: str = "glide", scene: str = "calm", duration: Any = "5m") -> dict[str, Any]:
    return {"name": name, "scene": scene, "duration": duration, "guidance": {"summary": "Glide."}}


def write_text(folder: Path, filename: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def write_yaml(folder: Path, filename: str, data: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def scene_file(folder: Path, scene: dict[str, Any], filename: str = "s.yaml") -> Path:
    """A file with one scene `x` (and nothing else)."""
    return write_yaml(folder, filename, {"scenes": {"x": scene}})


def routine_file(folder: Path, routine: dict[str, Any], filename: str = "r.yaml") -> Path:
    """A file with the scene `calm` and one routine `r`."""
    return write_yaml(folder, filename, {"scenes": {"calm": CALM}, "routines": {"r": routine}})


def problems(*folders: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_library(list(folders))
    assert caught.value.problems, "a ConfigError must list its problems"
    return caught.value.problems


def only_problem(*folders: Path) -> str:
    found = problems(*folders)
    assert len(found) == 1, found
    return found[0]


def assert_names(message: str, path: Path, field: str, *words: str) -> None:
    """The message names the file, the field path and the problem."""
    assert message.startswith(f"{path}: "), message
    assert f": {field}: " in message, message
    for word in words:
        assert word in message, message


@pytest.fixture(scope="module")
def shipped() -> Library:
    return load_library([builtin_scenes_dir()])


# --- reading files -----------------------------------------------------------------------


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_text(
        tmp_path,
        "broken.yaml",
        """\
        scenes:
          calm:
            lights: {kelvin: 2400
            music: {playlist: calm}
        """,
    )
    message = only_problem(tmp_path)
    assert message.startswith(f"{path}: not valid YAML (line 4, column "), message


def test_a_file_that_is_a_list_is_an_error(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "list.yaml", [{"calm": CALM}])
    message = only_problem(tmp_path)
    assert message.startswith(f"{path}: "), message
    assert "must be a mapping with `scenes:` and/or `routines:`" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "typo.yaml", {"scene": {"calm": CALM}})
    message = only_problem(tmp_path)
    assert_names(message, path, "scene", "unknown top-level key")


def test_scenes_section_must_be_a_mapping(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "list.yaml", {"scenes": [{"calm": CALM}]})
    message = only_problem(tmp_path)
    assert_names(message, path, "scenes", "must be a mapping from a name to a scene")


def test_routines_section_must_be_a_mapping(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "list.yaml", {"routines": "classic"})
    message = only_problem(tmp_path)
    assert_names(message, path, "routines", "must be a mapping from a name to a routine")


def test_scene_body_must_be_a_mapping(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "s.yaml", {"scenes": {"calm": ["warm", "dim"]}})
    message = only_problem(tmp_path)
    assert_names(message, path, "scenes.calm", "must be a mapping of fields")


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    message = only_problem(missing)
    assert message == f"{missing}: scenes folder does not exist"


def test_unreadable_file(tmp_path: Path) -> None:
    # A folder with a .yaml name cannot be read as a file, even by root.
    path = tmp_path / "odd.yaml"
    path.mkdir()
    message = only_problem(tmp_path)
    assert message.startswith(f"{path}: cannot read the file"), message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("scenes:\n  caf\u00e9:\n    lights: {}\n".encode("latin-1"))
    message = only_problem(tmp_path)
    assert message.startswith(f"{path}: cannot read the file"), message
    assert "utf-8" in message.lower()


def test_empty_file_is_an_empty_library(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n", encoding="utf-8")
    library = load_library([tmp_path])
    assert library.scenes == {}
    assert library.routines == {}


def test_yml_files_are_read_too(tmp_path: Path) -> None:
    write_yaml(tmp_path, "calm.yml", {"scenes": {"calm": CALM}})
    assert "calm" in load_library([tmp_path]).scenes


def test_a_file_over_the_size_limit_is_refused_with_its_size_and_the_limit(tmp_path: Path) -> None:
    # Valid YAML (a comment) one byte over 256 KiB: the size alone refuses it.
    path = tmp_path / "big.yaml"
    path.write_text("#" * (256 * 1024) + "\n")
    message = only_problem(tmp_path)
    assert message == (
        f"{path}: the file is too large to read: 262,145 bytes, over the limit of "
        "256 KiB (262,144 bytes) for a scenes file"
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2024-13-45", "is not a valid date: month must be in 1..12"),
        ("0x_", "is not a number we can read"),
        ("1" * 5000, "is not a number we can read"),
    ],
)
def test_a_number_or_date_python_cannot_make_names_its_line(
    tmp_path: Path, value: str, words: str
) -> None:
    path = write_text(tmp_path, "s.yaml", f"scenes:\n  calm:\n    title: {value}\n")
    message = only_problem(tmp_path)
    assert message.startswith(f"{path}: not valid YAML (line 3, column 12): "), message
    assert words in message, message
    assert len(message) < len(str(path)) + 200, message


def _aliases(uses: int) -> str:
    """A scene with two unknown fields: `nine`, a list of nine, and `more`, `uses` aliases
    of it (each stands for ten values: the list and its items)."""
    return (
        "scenes:\n  calm:\n    lights: {}\n    nine: &nine [a, b, c, d, e, f, g, h, i]\n"
        f"    more: [{', '.join(['*nine'] * uses)}]\n"
    )


def test_aliases_are_read_up_to_what_they_stand_for(tmp_path: Path) -> None:
    # 100,000 values at most: 10,000 uses of a list of nine are the limit, and are read.
    within = write_text(tmp_path / "within", "s.yaml", _aliases(10_000))
    assert problems(tmp_path / "within") == [
        f"{within}: scenes.calm.{field}: unknown field (check its spelling)"
        for field in ("nine", "more")
    ]
    beyond = write_text(tmp_path / "beyond", "s.yaml", _aliases(10_001))
    message = only_problem(tmp_path / "beyond")
    assert message.startswith(f"{beyond}: refused (line 4, column 11): too many aliases"), message
    assert "&nine" in message


HUGE = "x" * 200_000  # a value in a file under the size limit, where a message quotes it


@pytest.mark.parametrize(
    "data",
    [
        {"routines": {"r": {"stages": [stage(duration=HUGE)]}}},
        {"scenes": {HUGE: CALM}},
        {"routines": {"r": {"stages": [stage(scene=HUGE)]}}},
        {"scenes": {"calm": {"lights": {HUGE: 1}}}},
        {HUGE: 1},
    ],
    ids=["duration", "scene name", "unknown scene", "unknown field", "top-level key"],
)
def test_an_error_about_a_huge_value_stays_short(tmp_path: Path, data: Any) -> None:
    path = write_yaml(tmp_path, "s.yaml", {"scenes": {"calm": CALM}, **data})
    found = problems(tmp_path)
    for message in found:
        assert message.startswith(f"{path}: "), message[:1000]
        assert len(message) < len(str(path)) + 250, message[:1000]


def test_a_file_with_thousands_of_mistakes_gives_the_first_fifty(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "s.yaml", {"scenes": {f"s{i}": {} for i in range(5000)}})
    found = problems(tmp_path)
    assert len(found) == 51, found[-3:]
    assert all(message.startswith(f"{path}: scenes.s") for message in found[:50])
    assert found[-1] == "... and 4,950 more problems (fix these first)"


# --- scene fields ------------------------------------------------------------------------


def test_unknown_field_is_a_typo(tmp_path: Path) -> None:
    path = scene_file(tmp_path, {"lights": {"kelvin": 2400, "brightnes": 20}})
    message = only_problem(tmp_path)
    assert_names(message, path, "scenes.x.lights.brightnes", "unknown field")


def test_missing_required_field(tmp_path: Path) -> None:
    path = scene_file(tmp_path, {"title": "No lights", "dnd": True})
    message = only_problem(tmp_path)
    assert_names(message, path, "scenes.x.lights", "required field is missing")


@pytest.mark.parametrize(
    ("section", "key", "value", "words"),
    [
        ("lights", "kelvin", 1499, "greater than or equal to 1500"),
        ("lights", "kelvin", 6501, "less than or equal to 6500"),
        ("lights", "brightness", -1, "greater than or equal to 0"),
        ("lights", "brightness", 101, "less than or equal to 100"),
        ("lights", "transition", -0.5, "greater than or equal to 0"),
        ("lights", "transition", 7000, "less than or equal to 6553.5"),
        ("music", "volume", 101, "less than or equal to 100"),
        ("music", "volume", -5, "greater than or equal to 0"),
        ("music", "fade", 121, "less than or equal to 120"),
        ("music", "crossfade", 61, "less than or equal to 60"),
    ],
)
def test_out_of_range_values(
    tmp_path: Path, section: str, key: str, value: float, words: str
) -> None:
    scene: dict[str, Any] = {"lights": dict(CALM["lights"]), "music": {"playlist": "calm"}}
    scene[section][key] = value
    path = scene_file(tmp_path, scene)
    message = only_problem(tmp_path)
    assert_names(message, path, f"scenes.x.{section}.{key}", words)


def test_music_with_nothing_to_play(tmp_path: Path) -> None:
    path = scene_file(tmp_path, {**CALM, "music": {"volume": 20, "fade": 3}})
    message = only_problem(tmp_path)
    assert_names(message, path, "scenes.x.music", "music needs a playlist")


def test_music_stop_alone_is_enough(tmp_path: Path) -> None:
    scene_file(tmp_path, {**CALM, "music": {"stop": True}})
    music = load_library([tmp_path]).scene("x").music
    assert music is not None
    assert music.stop


@pytest.mark.parametrize("text", ["off", "'off'", '"off"', "Off", "false"])
def test_distractions_off_parses_to_false(tmp_path: Path, text: str) -> None:
    write_text(
        tmp_path,
        "s.yaml",
        f"""\
        scenes:
          calm:
            lights: {{kelvin: 2400, brightness: 25}}
            distractions: {text}
        """,
    )
    assert load_library([tmp_path]).scene("calm").distractions is False


@pytest.mark.parametrize("text", ["on", "'on'", '"on"', "true"])
def test_distractions_on_parses_to_true(tmp_path: Path, text: str) -> None:
    write_text(
        tmp_path,
        "s.yaml",
        f"""\
        scenes:
          calm:
            lights: {{kelvin: 2400}}
            distractions: {text}
        """,
    )
    assert load_library([tmp_path]).scene("calm").distractions is True


def test_quoted_on_key_in_lights(tmp_path: Path) -> None:
    write_text(
        tmp_path,
        "s.yaml",
        """\
        scenes:
          dark:
            lights: {"on": false, transition: 4}
        """,
    )
    assert load_library([tmp_path]).scene("dark").lights.target().on is False


def test_bare_on_key_in_lights(tmp_path: Path) -> None:
    write_text(
        tmp_path,
        "s.yaml",
        """\
        scenes:
          dark:
            lights:
              on: false
              transition: 4
        """,
    )
    assert load_library([tmp_path]).scene("dark").lights.on is False


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Calm", "deep calm", "-calm", "calm!", "x" * 65])
def test_bad_scene_name(tmp_path: Path, name: str) -> None:
    path = write_yaml(tmp_path, "s.yaml", {"scenes": {name: CALM}})
    message = only_problem(tmp_path)
    assert_names(message, path, f"scenes.{name}.name", "should match pattern")


def test_bad_routine_and_stage_names(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        "r.yaml",
        {
            "scenes": {"calm": CALM},
            "routines": {"My Routine": {"stages": [stage()]}, "r": {"stages": [stage("Step 1")]}},
        },
    )
    found = problems(tmp_path)
    assert len(found) == 2, found
    assert_names(found[0], path, "routines.My Routine.name", "should match pattern")
    assert_names(found[1], path, "routines.r.stages[0].name", "should match pattern")


def test_scene_named_off(tmp_path: Path) -> None:
    write_text(
        tmp_path,
        "s.yaml",
        """\
        scenes:
          off:
            lights: {brightness: 0}
        """,
    )
    assert "off" in load_library([tmp_path]).scenes


def test_name_defined_twice_in_one_folder(tmp_path: Path) -> None:
    first = write_yaml(tmp_path, "a.yaml", {"scenes": {"calm": CALM}})
    second = write_yaml(tmp_path, "b.yaml", {"scenes": {"calm": CALM}})
    message = only_problem(tmp_path)
    assert_names(message, second, "scenes.calm", f"already defined in {first}")


def test_name_defined_twice_in_one_file(tmp_path: Path) -> None:
    write_text(
        tmp_path,
        "s.yaml",
        """\
        scenes:
          calm:
            lights: {kelvin: 2400, brightness: 25}
          calm:
            lights: {kelvin: 6500, brightness: 100}
        """,
    )
    message = only_problem(tmp_path)
    assert "key 'calm' is written twice (first on line 2)" in message
    assert message.startswith(f"{tmp_path / 's.yaml'}: not valid YAML (line 4")


def test_later_folder_overrides_earlier(tmp_path: Path) -> None:
    builtin = tmp_path / "builtin"
    mine = tmp_path / "mine"
    write_yaml(builtin, "s.yaml", {"scenes": {"calm": CALM, "rest": CALM}})
    routine_path = write_yaml(builtin, "r.yaml", {"routines": {"r": {"stages": [stage()]}}})
    override = write_yaml(
        mine, "calm.yaml", {"scenes": {"calm": {"lights": {"kelvin": 2000, "brightness": 5}}}}
    )
    library = load_library([builtin, mine])
    assert library.scene("calm").lights.kelvin == 2000
    assert library.scene("calm").lights.brightness == 5
    assert library.scene("rest").lights.kelvin == 2400  # untouched
    assert library.sources["scene:calm"] == override
    assert library.sources["routine:r"] == routine_path


# --- routines and stages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        ("5x", "'5x' is not a duration"),
        ("", "'' is not a duration"),
        ("   ", "is not a duration"),
        ("-5m", "'-5m' is not a duration"),
        ("m", "'m' is not a duration"),
        (-5, "more than 0 seconds"),
        (0, "more than 0 seconds"),
        ("0m", "more than 0 seconds"),
        ("25h", "at most 24 hours"),
        (24 * 3600 + 1, "at most 24 hours"),
        (True, "a duration is a number of seconds"),
        (False, "a duration is a number of seconds"),
        ([5], "a duration is a number of seconds"),
    ],
)
def test_bad_durations(tmp_path: Path, duration: Any, words: str) -> None:
    path = routine_file(tmp_path, {"stages": [stage(duration=duration)]})
    message = only_problem(tmp_path)
    assert_names(message, path, "routines.r.stages[0].duration", words)


def test_missing_duration_must_be_written_as_null(tmp_path: Path) -> None:
    body = stage()
    del body["duration"]
    path = routine_file(tmp_path, {"stages": [body]})
    message = only_problem(tmp_path)
    assert_names(message, path, "routines.r.stages[0].duration", "required field is missing")


def test_nan_duration_is_rejected(tmp_path: Path) -> None:
    path = routine_file(tmp_path, {"stages": [stage(duration=math.nan)]})
    message = only_problem(tmp_path)
    assert_names(message, path, "routines.r.stages[0].duration")


def test_huge_integer_duration_is_a_config_error(tmp_path: Path) -> None:
    routine_file(tmp_path, {"stages": [stage(duration=10**400)]})
    only_problem(tmp_path)


def test_stage_with_unknown_scene(tmp_path: Path) -> None:
    path = routine_file(tmp_path, {"stages": [stage(), stage("knead", scene="kneading")]})
    message = only_problem(tmp_path)
    assert_names(message, path, "routines.r.stages[1].scene", "unknown scene 'kneading'")


def test_invalid_scene_is_not_also_reported_as_unknown(tmp_path: Path) -> None:
    write_yaml(
        tmp_path,
        "r.yaml",
        {
            "scenes": {"calm": {"lights": {"kelvin": 100}}},
            "routines": {"r": {"stages": [stage()]}},
        },
    )
    message = only_problem(tmp_path)
    assert "scenes.calm.lights.kelvin" in message


def test_duplicate_stage_names(tmp_path: Path) -> None:
    path = routine_file(tmp_path, {"stages": [stage("glide"), stage("glide", duration="2m")]})
    message = only_problem(tmp_path)
    assert_names(message, path, "routines.r.stages", "stage name 'glide' is used twice")


def test_routine_with_no_stages(tmp_path: Path) -> None:
    path = routine_file(tmp_path, {"title": "Empty", "stages": []})
    message = only_problem(tmp_path)
    assert_names(message, path, "routines.r.stages", "at least 1 item")


def test_routine_without_stages_field(tmp_path: Path) -> None:
    path = routine_file(tmp_path, {"title": "Empty"})
    message = only_problem(tmp_path)
    assert_names(message, path, "routines.r.stages", "required field is missing")


def test_stage_guidance_needs_a_summary(tmp_path: Path) -> None:
    body = stage()
    body["guidance"] = {"steps": ["Glide up the back."]}
    path = routine_file(tmp_path, {"stages": [body]})
    message = only_problem(tmp_path)
    assert_names(message, path, "routines.r.stages[0].guidance.summary", "missing")


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    scenes = write_yaml(
        tmp_path,
        "a.yaml",
        {
            "scenes": {
                "calm": {"lights": {"brightnes": 20}},
                "loud": {"lights": {"kelvin": 9000}, "music": {"volume": 20}},
            }
        },
    )
    broken = write_text(tmp_path, "b.yaml", "scenes: [\n")
    routines = write_yaml(
        tmp_path,
        "c.yaml",
        {"routines": {"r": {"stages": [stage(scene="nowhere", duration="5x")]}}},
    )
    missing = tmp_path / "missing"
    found = problems(tmp_path, missing)
    assert len(found) == 6, found
    joined = "\n".join(found)
    assert f"{scenes}: scenes.calm.lights.brightnes: unknown field" in joined
    assert f"{scenes}: scenes.loud.lights.kelvin: " in joined
    assert f"{scenes}: scenes.loud.music: music needs" in joined
    assert f"{broken}: not valid YAML" in joined
    assert f"{routines}: routines.r.stages[0].duration: '5x'" in joined
    assert f"{missing}: scenes folder does not exist" in joined


def test_config_error_message_lists_every_problem(tmp_path: Path) -> None:
    write_yaml(tmp_path, "a.yaml", {"scenes": {"a": {}, "b": {}}})
    with pytest.raises(ConfigError) as caught:
        load_library([tmp_path])
    assert len(caught.value.problems) == 2
    assert str(caught.value) == "\n".join(caught.value.problems)


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300),
        ("1m30s", 90),
        ("90s", 90),
        (90, 90),
        (1.5, 1.5),
        ("1h", 3600),
        ("1h 15m", 4500),
        ("0.5m", 30),
        ("24h", 86400),
        (None, None),
        ("untimed", None),
    ],
)
def test_parse_duration(value: Any, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


def test_null_duration_is_untimed(tmp_path: Path) -> None:
    routine_file(tmp_path, {"stages": [stage("prepare", duration=None), stage("glide")]})
    routine = load_library([tmp_path]).routine("r")
    assert routine.stages[0].duration is None
    assert not routine.stages[0].timed
    assert routine.stages[1].timed
    assert routine.total_duration == 300


# --- the shipped library -----------------------------------------------------------------

CLASSIC_STAGES = ["prepare", "effleurage", "petrissage", "friction", "closing", "rest", "wake"]


def test_shipped_library_loads(shipped: Library) -> None:
    assert {
        "classic",
        "back-and-shoulders",
        "taster",
        "side-lying-back",
        "seated-neck-shoulders",
        "legs-and-feet",
    } <= set(shipped.routines)
    assert set(CLASSIC_STAGES) <= set(shipped.scenes)


def test_classic_stages_in_order(shipped: Library) -> None:
    classic = shipped.routine("classic")
    assert [s.name for s in classic.stages] == CLASSIC_STAGES
    assert not classic.stage("prepare").timed
    assert all(s.timed for s in classic.stages[1:])


def test_back_and_shoulders_stages(shipped: Library) -> None:
    routine = shipped.routine("back-and-shoulders")
    names = [s.name for s in routine.stages]
    assert names[:6] == ["prepare", "effleurage", "petrissage", "friction", "closing", "rest"]
    assert not routine.stage("prepare").timed
    assert all(s.timed for s in routine.stages[1:])


@pytest.mark.parametrize(
    ("routine", "low", "high"),
    [
        ("classic", 40, 70),
        ("back-and-shoulders", 12, 20),
        ("taster", 3, 8),
        ("side-lying-back", 20, 35),
        ("seated-neck-shoulders", 10, 15),
        ("legs-and-feet", 20, 40),
    ],
)
def test_routine_totals_are_sane(shipped: Library, routine: str, low: int, high: int) -> None:
    if routine not in shipped.routines:
        pytest.skip(f"no {routine!r} routine shipped")
    minutes = shipped.routine(routine).total_duration / 60
    assert low <= minutes <= high


def test_every_shipped_stage_has_guidance(shipped: Library) -> None:
    for routine in shipped.routines.values():
        assert routine.title, routine.name
        for s in routine.stages:
            where = f"{routine.name}.{s.name}"
            assert s.title, where
            assert s.guidance.summary.strip(), where
            assert 3 <= len(s.guidance.steps) <= 6, where
            assert all(step.text.strip() for step in s.guidance.steps), where


def test_shipped_scenes_are_spa_like(shipped: Library) -> None:
    for scene in shipped.scenes.values():
        assert scene.title and scene.description, scene.name
        assert scene.dnd is True, scene.name
        assert scene.distractions is False, scene.name
        assert scene.lights.on and scene.lights.kelvin is not None, scene.name
        assert 2000 <= scene.lights.kelvin <= 3000, scene.name  # always warm
        assert scene.music is not None and scene.music.playlist, scene.name
        assert scene.music.volume <= 35, scene.name
    rest, wake = shipped.scene("rest"), shipped.scene("wake")
    assert rest.lights.brightness <= 10
    assert rest.lights.kelvin == min(s.lights.kelvin or 0 for s in shipped.scenes.values())
    assert wake.lights.brightness > shipped.scene("prepare").lights.brightness
    assert wake.lights.transition >= 20


def test_name_inside_the_body_is_an_error(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "s.yaml", {"scenes": {"calm": {**CALM, "name": "other"}}})
    message = only_problem(tmp_path)
    assert_names(message, path, "scenes.calm.name", "leave `name:` out")


def test_quoted_seconds_are_seconds() -> None:
    assert parse_duration("90") == 90
