"""Fitting a routine to the time you have: `fit(routine, minutes)`.

Pure: no I/O. A massage teacher plans minutes per part and, given less time, keeps the
shape rather than rushing everything: warm up with effleurage first, close with it last,
and take the time from the middle. These are the rules, in order (docs/coaching.md,
"Fitting the routine to the time you have", says them in plain words):

1. Only timed stages count and change. Untimed ones (getting ready) still wait for the
   giver; the order and the names of the stages never change.
2. Each timed stage has a part (`roles`): the warm-up (the first timed stage, when it is
   effleurage), the ending (the closing strokes and every timed stage after them, or,
   without closing strokes, the quiet stages at the end: rest, wake) and the middle
   (everything between: kneading, friction, ...).
3. Each stage stays between its floor and its ceiling (`limits`). The floor is its
   technique's `MINIMUM_MINUTES`, but never more than the routine's own length for it
   (a routine that already gives a stage less keeps that). The ceiling is the safe bound
   of a preferred length (profiles.py): twice the routine's own length and at most
   60 minutes, never less than its own length. The whole is at most `MAX_MINUTES`.
4. Shrinking, a stage keeps `floor + spare * k ** SHRINK_RATE[part]` of its time, where
   `spare` is what it had above its floor and one `k` (0 to 1) is found for the whole
   routine. The middle's rate is above the others', so it always gives up a larger share
   of its spare time than the warm-up and the ending do: the middle shortens first, and
   everything is at its floor together only at the shortest possible. (A rate of 1.5,
   not more: the kneading is still the heart of a short massage.)
5. Stretching, a stage grows by `g * share * length`, up to its ceiling, with one `g` for
   the whole routine and `share` from `STRETCH_SHARE` (friction's own in
   `STRETCH_SHARE_BY_TECHNIQUE`): the kneading of the middle gets most of the extra, the
   warm-up, the ending and friction (the firmest technique, used briefly) a little.
6. Lengths are whole seconds and add up to the length asked for, to the second. A length
   is possible from the shortest to the longest (`reach`), which are shown to a tenth of
   a minute; a request within `SLACK_SECONDS` of them is taken as the bound itself, so
   the bound as shown is always accepted. Anything else is an `InvalidInput` that names
   the shortest and the longest possible.

Where it sits: the person's preferred stage lengths (profiles.adapt) come first and set
the proportions; fitting then scales those to the total. The floors and ceilings always
come from the routine as written (`written`), so a preference can neither push a stage
past its safe bound nor change what is possible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ambiance.core.profiles import MAX_STAGE_FACTOR, MAX_STAGE_MINUTES
from ambiance.core.scenes import Routine, Stage
from ambiance.errors import InvalidInput

__all__ = [
    "MAX_MINUTES",
    "MINIMUM_MINUTES",
    "MIN_MINUTES",
    "OTHER_MINIMUM_MINUTES",
    "SHRINK_RATE",
    "SLACK_SECONDS",
    "STRETCH_SHARE",
    "STRETCH_SHARE_BY_TECHNIQUE",
    "Fitted",
    "Limits",
    "Reach",
    "fit",
    "limits",
    "reach",
    "roles",
    "technique",
    "unfitted",
]

Part = Literal["warm-up", "middle", "ending"]

# --- the rules as data -----------------------------------------------------------------

# The shortest a stage of each technique may be, in minutes (a stage's technique is its
# scene's name, or else its own name).
MINIMUM_MINUTES: dict[str, float] = {
    "effleurage": 2.0,  # the warm-up spreads the oil and warms the tissue: never skipped
    "petrissage": 3.0,  # kneading both sides, unhurried: a minute and a half each
    "friction": 1.0,  # a few small passes on a spot or two, smoothed over: short by nature
    "closing": 2.0,  # slow strokes getting lighter: the ending is never rushed
    "rest": 1.0,  # a quiet minute before the lights come up
    "wake": 1.0,  # the lights come up slowly
}
OTHER_MINIMUM_MINUTES = 1.0  # a technique not named above (a user's own routine)
MAX_MINUTES = 90.0  # the longest session fitting makes
MIN_MINUTES = 1.0  # the shortest length anyone may ask for (the API's bound)
# How fast each part gives up its spare time when shrinking (rule 4).
SHRINK_RATE: dict[Part, float] = {"warm-up": 1.0, "middle": 1.5, "ending": 1.0}
# Each part's share of the extra time when stretching, relative to its length (rule 5).
STRETCH_SHARE: dict[Part, float] = {"warm-up": 0.25, "middle": 1.0, "ending": 0.25}
STRETCH_SHARE_BY_TECHNIQUE: dict[str, float] = {"friction": 0.25}
# A tenth of a minute shown rounded is at most 3 s off the bound it shows (rule 6).
SLACK_SECONDS = 3

_QUIET = ("rest", "wake")  # the ending of a routine without closing strokes


def technique(stage: Stage) -> str | None:
    """The technique a stage is: its scene's name, else its own, if one we know."""
    for name in (stage.scene, stage.name):
        if name in MINIMUM_MINUTES:
            return name
    return None


def roles(routine: Routine) -> dict[str, Part]:
    """Each timed stage's part: warm-up, middle or ending (rule 2)."""
    timed = [stage for stage in routine.stages if stage.timed]
    if not timed:
        return {}
    start = 1 if technique(timed[0]) == "effleurage" else 0
    closing = [i for i, stage in enumerate(timed) if technique(stage) == "closing"]
    if closing:
        end = closing[-1]
    else:
        end = len(timed)
        while end > start and technique(timed[end - 1]) in _QUIET:
            end -= 1
    end = max(end, start)
    parts: dict[str, Part] = {}
    for index, stage in enumerate(timed):
        parts[stage.name] = "warm-up" if index < start else "middle" if index < end else "ending"
    return parts


@dataclass(frozen=True)
class Limits:
    """A timed stage's floor and ceiling, in whole seconds (rule 3)."""

    floor: int
    ceiling: int


def limits(stage: Stage) -> Limits:
    """The floor and ceiling of a stage as the routine writes it."""
    own = stage.duration
    if own is None:
        raise ValueError(f"stage {stage.name!r} is untimed")
    name = technique(stage)
    minimum = MINIMUM_MINUTES[name] if name is not None else OTHER_MINIMUM_MINUTES
    floor = math.ceil(min(minimum * 60, own))
    ceiling = math.floor(max(own, min(own * MAX_STAGE_FACTOR, MAX_STAGE_MINUTES * 60)))
    return Limits(floor=floor, ceiling=max(floor, ceiling))


@dataclass(frozen=True)
class Reach:
    """What a routine can be fitted to, in minutes: to a tenth, as people are shown it."""

    routine: str
    shortest: float
    longest: float
    own: float  # the routine's own length (its timed stages)


def reach(routine: Routine, *, written: Routine | None = None) -> Reach:
    """The shortest and the longest `routine` can be fitted to; `written` as in `fit()`
    (the routine as its file writes it, when `routine` is that routine adapted)."""
    return _reach(routine, _limits_of(routine, written or routine))


def _reach(routine: Routine, bounds: Mapping[str, Limits]) -> Reach:
    low, high = _bounds(bounds)
    return Reach(
        routine=routine.name,
        shortest=_tenth(low),
        longest=_tenth(high),
        own=_tenth(routine.total_duration),
    )


def _tenth(seconds: float) -> float:
    return round(seconds / 60, 1)


def _limits_of(routine: Routine, written: Routine) -> dict[str, Limits]:
    """Each timed stage's limits, from the stage of that name as written (else its own)."""
    as_written = {stage.name: stage for stage in written.stages if stage.timed}
    return {
        stage.name: limits(as_written.get(stage.name, stage))
        for stage in routine.stages
        if stage.timed
    }


def _bounds(bounds: Mapping[str, Limits]) -> tuple[int, int]:
    """The shortest and the longest possible, in whole seconds."""
    low = sum(limit.floor for limit in bounds.values())
    high = min(sum(limit.ceiling for limit in bounds.values()), int(MAX_MINUTES * 60))
    return low, max(low, high)


def _shown(minutes: float) -> str:
    return f"{round(minutes, 1):g} minute{'' if round(minutes, 1) == 1 else 's'}"


def _refuse(routine: Routine, minutes: float, found: Reach, why: str) -> InvalidInput:
    return InvalidInput(
        f"the routine {routine.name!r} cannot be fitted to {_shown(minutes)}: {why} "
        f"(it can take {found.shortest:g} to {found.longest:g} minutes)",
        detail={
            "routine": routine.name,
            "minutes": minutes,
            "shortest": found.shortest,
            "longest": found.longest,
        },
    )


def _target(routine: Routine, minutes: float, bounds: Mapping[str, Limits]) -> int:
    """The total asked for, in whole seconds within the bounds; InvalidInput if not possible."""
    if not isinstance(minutes, int | float) or not math.isfinite(minutes) or minutes <= 0:
        raise InvalidInput(f"minutes must be a number above 0, not {minutes!r}")
    if not bounds:
        raise InvalidInput(
            f"the routine {routine.name!r} has no timed stages: it waits for you at every "
            "stage, so there is no length to fit"
        )
    low, high = _bounds(bounds)
    asked = round(minutes * 60)
    found = _reach(routine, bounds)
    if asked < low - SLACK_SECONDS:
        why = f"the shortest possible is {_shown(found.shortest)}, every stage at its shortest"
        raise _refuse(routine, minutes, found, why)
    if asked > high + SLACK_SECONDS:
        why = f"the longest possible is {_shown(found.longest)}"
        if high >= MAX_MINUTES * 60:
            why += " (a session is at most 90 minutes)"
        else:
            why += ", every stage at most twice its own length"
        raise _refuse(routine, minutes, found, why)
    return min(max(asked, low), high)


def _solve(total: Callable[[float], float], target: float, high: float) -> float:
    """The x in [0, high] where the increasing `total(x)` is `target` (by bisection)."""
    low = 0.0
    for _ in range(200):
        middle = (low + high) / 2
        if total(middle) < target:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * max(1.0, high):
            break
    return high


def _whole_seconds(lengths: list[float], target: int) -> list[int]:
    """`lengths` (adding up to at least `target`) as whole seconds adding up to `target`:
    each rounded down, then the largest remainders up. A length between two whole
    numbers stays between them, so it keeps within its (whole) floor and ceiling."""
    down = [math.floor(length) for length in lengths]
    missing = max(0, min(len(lengths), target - sum(down)))
    order = sorted(range(len(lengths)), key=lambda i: (-(lengths[i] - down[i]), i))
    for index in order[:missing]:
        down[index] += 1
    return down


def fit(routine: Routine, minutes: float, *, written: Routine | None = None) -> Routine:
    """`routine` with its timed stages fitted to `minutes` in all (the rules: module doc).

    `written` is the routine as its file writes it, whose lengths set every stage's floor
    and ceiling; `routine` may be that routine adapted to a person (their preferred
    lengths set the proportions). Raises InvalidInput when `minutes` is not possible.
    """
    bounds = _limits_of(routine, written or routine)
    target = _target(routine, minutes, bounds)
    parts = roles(routine)
    timed = [stage for stage in routine.stages if stage.timed]
    floors = [bounds[stage.name].floor for stage in timed]
    ceilings = [bounds[stage.name].ceiling for stage in timed]
    # Where each stage starts from: its length now (the person's), within its limits.
    start = [
        min(max(float(stage.duration or 0), floor), ceiling)
        for stage, floor, ceiling in zip(timed, floors, ceilings, strict=True)
    ]
    if target <= sum(start):
        rates = [SHRINK_RATE[parts[stage.name]] for stage in timed]

        def shrunk(k: float) -> list[float]:
            return [f + (s - f) * k**r for f, s, r in zip(floors, start, rates, strict=True)]

        lengths = shrunk(_solve(lambda k: sum(shrunk(k)), target, 1.0))
    else:
        shares = [
            STRETCH_SHARE_BY_TECHNIQUE.get(technique(stage) or "", STRETCH_SHARE[parts[stage.name]])
            for stage in timed
        ]

        def stretched(g: float) -> list[float]:
            return [
                min(c, s * (1 + g * share))
                for s, c, share in zip(start, ceilings, shares, strict=True)
            ]

        # Far enough that every stage is at its ceiling.
        enough = max(
            (c - s) / (s * share) for s, c, share in zip(start, ceilings, shares, strict=True)
        )
        lengths = stretched(_solve(lambda g: sum(stretched(g)), target, enough))
    seconds = dict(zip((s.name for s in timed), _whole_seconds(lengths, target), strict=True))
    stages = [
        stage.model_copy(update={"duration": float(seconds[stage.name])})
        if stage.name in seconds
        else stage
        for stage in routine.stages
    ]
    return routine.model_copy(update={"stages": stages})


# --- a fitted session ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fitted:
    """A session whose routine was fitted to `minutes`; `lengths` are its timed stages'
    lengths before (the person's own), so that learning from its feedback is about the
    person's lengths and not about the time they had that day."""

    minutes: float
    lengths: Mapping[str, float]
    # The minutes asked for, when they were more or less than the routine could take
    # after today's answers left part of it out (None: `minutes` is what was asked).
    asked: float | None = None

    @classmethod
    def before(cls, routine: Routine, minutes: float, asked: float | None = None) -> Fitted:
        lengths = {s.name: s.duration for s in routine.stages if s.duration is not None}
        return cls(minutes=minutes, lengths=lengths, asked=None if asked == minutes else asked)

    @property
    def wanted(self) -> float:
        """The minutes the person asked for."""
        return self.minutes if self.asked is None else self.asked

    def dump(self) -> dict[str, Any]:
        data: dict[str, Any] = {"minutes": self.minutes, "lengths": dict(self.lengths)}
        if self.asked is not None:
            data["asked"] = self.asked
        return data

    @classmethod
    def load(cls, data: Any) -> Fitted | None:
        """Read `dump()`'s dict back; None for a session that was not fitted."""
        if not isinstance(data, dict):
            return None
        asked = data.get("asked")
        return cls(
            minutes=float(data["minutes"]),
            lengths=dict(data["lengths"]),
            asked=None if asked is None else float(asked),
        )


def unfitted(routine: Routine, fitted: Fitted | None) -> Routine:
    """The routine with the lengths it had before fitting (itself when not fitted)."""
    if fitted is None:
        return routine
    stages = [
        stage.model_copy(update={"duration": fitted.lengths[stage.name]})
        if stage.timed and stage.name in fitted.lengths
        else stage
        for stage in routine.stages
    ]
    return routine.model_copy(update={"stages": stages})
