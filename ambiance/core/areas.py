"""Body areas: the one vocabulary that steps, profiles and health answers share.

An area has an id (`lower_back`) and a plain name ("lower back"); `parse_area` takes
either, whatever its case, spaces, hyphens or underscores, and refuses anything else
with an error that names the allowed values. Two kinds:

- areas to work (scalp ... feet): what a step names, what a profile focuses on or
  avoids;
- areas of caution (armpit, floating ribs, spine, ...): facts, never a place to work.
  A step may name one only to glide over it softly or rest a still hand there
  (`scenes.Step` checks that), and a profile may avoid one (which changes nothing the
  routine does not already do, and is allowed so that nobody is refused for caution).

Pure data and parsing: no I/O. docs/coaching.md ("Body areas") explains each choice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

__all__ = [
    "AREAS",
    "CAUTION",
    "WORKED",
    "Area",
    "AreaId",
    "area",
    "areas_in_text",
    "below",
    "listing",
    "migrate_area",
    "parse_area",
]


@dataclass(frozen=True)
class Area:
    id: str
    name: str  # plain words, as a sentence uses them: "lower back"
    caution: bool = False
    why: str = ""  # for an area of caution: what lies there and what that means
    # Words that name the area in a step's text (lowercase): how a plain-text step is
    # read for the areas it works, and how the tests check the built-in texts.
    words: tuple[str, ...] = ()


_WORKED = (
    Area("scalp", "scalp", words=("scalp",)),
    Area("face", "face", words=("their face", "forehead", "temples", "jaw")),
    Area("neck", "back of the neck", words=("neck",)),
    Area("shoulders", "shoulders", words=("shoulder", "shoulders", "trapezius")),
    Area("upper_back", "upper back", words=("upper back", "shoulder blade", "shoulder blades")),
    Area("lower_back", "lower back", words=("lower back", "waist")),
    Area("sides", "sides of the back", words=("the sides", "sides of the back")),
    Area("arms", "arms", words=("arms", "upper arm", "upper arms")),
    Area("hands", "hands", words=("their hands", "their hand")),
    Area("glutes", "glutes", words=("glutes", "buttocks", "hips")),
    Area("thighs", "thighs", words=("thigh", "thighs", "hamstrings")),
    Area("calves", "calves", words=("calf", "calves")),
    Area("feet", "feet", words=("feet", "foot", "soles")),
)

_CAUTION = (
    Area(
        "armpit",
        "armpit",
        True,
        "nerves and lymph nodes lie just under the skin: no kneading, no pressing; "
        "at most a soft glide past it",
        ("armpit", "armpits"),
    ),
    Area(
        "floating_ribs",
        "floating ribs and kidneys",
        True,
        "the lowest two ribs, at the sides of the lower back, end free over the kidneys: "
        "broad, flat, light pressure only, never deep, never tapping",
        ("floating ribs", "kidneys"),
    ),
    Area(
        "spine",
        "spine",
        True,
        "never press on the spine itself: work the muscles either side of it",
        ("spine",),
    ),
    Area(
        "front_of_neck",
        "front and sides of the neck",
        True,
        "arteries, veins and nerves lie close to the surface: never press there",
        ("front of the neck", "sides of the neck", "throat"),
    ),
    Area(
        "back_of_knee",
        "back of the knee",
        True,
        "nerves and blood vessels with little cover: glide over it lightly, never press",
        ("back of the knee", "backs of the knees"),
    ),
    Area(
        "inner_elbow",
        "inner elbow",
        True,
        "nerves and blood vessels close under the skin: never press",
        ("inner elbow",),
    ),
    Area("groin", "groin", True, "not a place for a home massage", ("groin",)),
    Area(
        "lower_abdomen",
        "abdomen below the ribs",
        True,
        "organs with no bone over them: no deep pressure",
        ("abdomen", "belly"),
    ),
)

WORKED: tuple[Area, ...] = _WORKED
CAUTION: tuple[Area, ...] = _CAUTION
AREAS: dict[str, Area] = {a.id: a for a in (*_WORKED, *_CAUTION)}

# What lies below an area on the leg, for "no pressure on or below varicose veins".
_BELOW: dict[str, tuple[str, ...]] = {
    "thighs": ("back_of_knee", "calves", "feet"),
    "back_of_knee": ("calves", "feet"),
    "calves": ("feet",),
}


def _key(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.strip().lower())


_BY_KEY: dict[str, str] = {}
for _area in AREAS.values():
    _BY_KEY[_key(_area.id)] = _area.id
    _BY_KEY[_key(_area.name)] = _area.id

# Only for migrating the free text that profiles held before areas had ids: the words
# people typed there. The API itself takes ids and plain names only.
_FREE_TEXT: dict[str, tuple[str, ...]] = {
    "back": ("upper_back", "lower_back"),
    "whole back": ("upper_back", "lower_back", "sides"),
    "head": ("scalp",),
    "shoulder": ("shoulders",),
    "upper shoulders": ("shoulders",),
    "low back": ("lower_back",),
    "lumbar": ("lower_back",),
    "arm": ("arms",),
    "hand": ("hands",),
    "bottom": ("glutes",),
    "buttocks": ("glutes",),
    "glute": ("glutes",),
    "hips": ("glutes",),
    "legs": ("thighs", "calves"),
    "leg": ("thighs", "calves"),
    "thigh": ("thighs",),
    "calf": ("calves",),
    "foot": ("feet",),
    "knees": ("back_of_knee",),
    "knee": ("back_of_knee",),
    "ribs": ("floating_ribs",),
    "kidneys": ("floating_ribs",),
    "armpits": ("armpit",),
    "throat": ("front_of_neck",),
    "belly": ("lower_abdomen",),
    "tummy": ("lower_abdomen",),
    "stomach": ("lower_abdomen",),
}


def _allowed() -> str:
    return ", ".join(f"{a.id} ({a.name})" if a.id != a.name else a.id for a in AREAS.values())


def parse_area(value: object) -> str:
    """The id of the area `value` names (an id or a plain name); ValueError otherwise."""
    if isinstance(value, str):
        found = _BY_KEY.get(_key(value))
        if found is not None:
            return found
        shown = value if len(value) <= 40 else value[:39] + "…"
        raise ValueError(f"{shown!r} is not a body area: use one of {_allowed()}")
    raise ValueError(f"a body area is a text: one of {_allowed()}")


def area(area_id: str) -> Area:
    return AREAS[area_id]


def listing(ids: Iterable[str]) -> str:
    """Plain names joined for a sentence: "shoulders, upper back and lower back"."""
    names = [AREAS[i].name for i in ids]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def below(ids: Iterable[str]) -> list[str]:
    """The areas given and those below them on the leg, in vocabulary order."""
    found = set(ids)
    for area_id in list(found):
        found.update(_BELOW.get(area_id, ()))
    return [a for a in AREAS if a in found]


def areas_in_text(text: str) -> list[str]:
    """The areas a text names (by the words above), in vocabulary order."""
    lowered = f" {_key(text)} "
    found = []
    for candidate in AREAS.values():
        for word in candidate.words:
            if re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", lowered):
                found.append(candidate.id)
                break
    return found


def migrate_area(text: str, *, generous: bool) -> tuple[list[str], bool]:
    """The ids a free-text area of an old profile means, and whether that was exact.

    Exact: an id, a plain name, or a common word for one ("back", "legs"). Otherwise,
    if `generous` (for areas to avoid, where leaving out too much is the safe side),
    the areas the text names ("sore left shoulder" -> shoulders), not exact, so the
    text is kept as written as well.
    """
    key = _key(text)
    if key in _BY_KEY:
        return [_BY_KEY[key]], True
    if key in _FREE_TEXT:
        return list(_FREE_TEXT[key]), True
    if key.endswith("s") and key[:-1] in _BY_KEY:
        return [_BY_KEY[key[:-1]]], True
    return (areas_in_text(text) if generous else []), False


# A field of area ids: takes an id or a plain name, keeps the id. The schema lists both.
AreaId = Annotated[
    str,
    BeforeValidator(parse_area),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted({*AREAS, *(a.name for a in AREAS.values())}),
            "description": "A body area: its id (`lower_back`) or its plain name (`lower back`).",
        }
    ),
]
