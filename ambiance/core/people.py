"""Profiles and feedback, kept in the store: the people side of the service.

The rules (how a profile adapts a session, how feedback teaches it) are pure functions
in profiles.py; this module only reads and writes them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ambiance.core.areas import migrate_area
from ambiance.core.checkins import Checkins
from ambiance.core.fitting import Fitted, unfitted
from ambiance.core.profiles import (
    MAX_FREE_AREAS,
    Feedback,
    Hint,
    Pressure,
    Profile,
    learn,
    learn_checkins,
)
from ambiance.core.scenes import Routine
from ambiance.core.views import FeedbackGiven, stages_reached
from ambiance.errors import Conflict, InvalidInput, NotFound
from ambiance.infra.clock import Clock
from ambiance.infra.store import SessionRecord, Store

log = logging.getLogger(__name__)

EXPORT_FORMAT = "ambiance.profile/1"
EXPORT_FEEDBACK = 1000  # the most feedback an export carries (the newest)


@dataclass(frozen=True)
class FeedbackTaken:
    """Feedback kept: which it is, the profile as it learned, and what was left out."""

    given: FeedbackGiven
    profile: Profile | None  # None: the session had no profile, or it was deleted since
    # Stages it named that the session never reached: kept out, not learned.
    ignored: list[str] = dataclasses.field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return [
            f"stage {name!r} was never reached in this session: what was said about it "
            "is not learned (the form may be from before the session ended)"
            for name in self.ignored
        ]


def migrate(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A stored profile's data with free-text `focus`/`avoid` turned into area ids.

    Text that names an area exactly (an id, a plain name, a common word such as "legs")
    becomes its ids; anything else is kept as written in `unmatched_areas` (an area to
    avoid is also mapped to the areas it contains: "sore left shoulder" leaves out the
    shoulders, the safe side). Returns the data and whether it changed.
    """
    changed = False
    out = dict(data)
    unmatched = out.get("unmatched_areas", {})
    if not isinstance(unmatched, dict):
        return out, False  # not a profile's shape: validation says what is wrong
    unmatched = dict(unmatched)
    for kind in ("focus", "avoid"):
        given = out.get(kind)
        earlier = unmatched.get(kind, [])
        if not isinstance(given, list) or not isinstance(earlier, list):
            continue
        ids: list[str] = []
        kept = list(earlier)
        for item in given:
            if not isinstance(item, str):
                ids.append(item)  # not text: left for validation to refuse
                continue
            found, exact = migrate_area(item, generous=kind == "avoid")
            ids += found
            if not exact:
                kept.append(item.strip())
            if not exact or found != [item]:
                changed = True
        if changed:
            out[kind] = _once(ids)
        if kept:
            unmatched[kind] = _once(kept)[:MAX_FREE_AREAS]
    if unmatched:
        out["unmatched_areas"] = unmatched
    return out, changed


def _once(items: list[Any]) -> list[Any]:
    """Each item once, in order (items that cannot be hashed are left for validation)."""
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


class ProfileBook:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def _read(self, data: dict[str, Any]) -> Profile:
        """A stored profile; one from before areas had ids is migrated and stored anew
        (so it is logged once). The log names how many areas were kept as text, never
        the text itself: it may say something about their health."""
        migrated, changed = migrate(data)
        profile = Profile.model_validate(migrated)
        if changed:
            self.put(profile)
            kept = len(profile.unmatched_areas.focus) + len(profile.unmatched_areas.avoid)
            log.warning(
                "profile %r: its areas now use the body areas' ids; %d matched none and "
                "are kept as written (see the profile's warnings)",
                profile.name,
                kept,
            )
        return profile

    def list(self) -> list[Profile]:
        profiles = []
        for data in self.store.profiles.all():
            try:
                profiles.append(self._read(data))
            except ValidationError:
                log.error("profile %r in the store is not readable; skipped", data.get("name"))
        return profiles

    def get(self, name: str) -> Profile:
        data = self.store.profiles.get(name)
        if data is None:
            raise NotFound("profile", name, known=[p.name for p in self.list()])
        return self._read(data)

    def create(self, profile: Profile) -> Profile:
        if self.store.profiles.get(profile.name) is not None:
            raise Conflict(f"a profile named {profile.name!r} exists already; update it instead")
        return self.put(profile)

    def put(self, profile: Profile) -> Profile:
        data = profile.model_dump(mode="json", exclude={"warnings"})
        self.store.profiles.put(profile.name, data, at=self.clock.now())
        return profile

    def update(self, name: str, changes: dict[str, Any]) -> Profile:
        """Change some fields of a profile; its name stays.

        A field changed to None goes back to its default (as a JSON merge patch's `null`
        removes a member): `display_name: None` clears the name.
        """
        current = self.get(name)
        if "name" in changes and changes["name"] != name:
            raise InvalidInput("a profile's name cannot change; export it and import it anew")
        merged = current.model_dump(mode="json", exclude={"warnings"})
        for field, value in changes.items():
            if value is None:
                merged.pop(field, None)
            elif field == "health" and isinstance(value, dict):
                # One answer changed keeps the others: the health answers merge, and an
                # answer sent as null is forgotten.
                answers = {**merged.get("health", {}), **value}
                merged["health"] = {k: v for k, v in answers.items() if v is not None}
            else:
                merged[field] = value
        try:
            updated = Profile.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"{where}: {first['msg']}") from None
        return self.put(updated)

    def delete(self, name: str) -> None:
        if not self.store.profiles.delete(name):
            raise NotFound("profile", name)

    def export(self, name: str) -> dict[str, Any]:
        """The profile and its feedback, as one JSON document."""
        profile = self.get(name)
        return {
            "format": EXPORT_FORMAT,
            "profile": profile.model_dump(mode="json"),
            "feedback": self.store.feedback.for_profile(name, limit=EXPORT_FEEDBACK),
        }

    def import_(self, document: dict[str, Any], *, replace: bool = False) -> Profile:
        """Take a document from `export()`; its feedback history is not replayed."""
        if document.get("format") != EXPORT_FORMAT:
            raise InvalidInput(f"not an ambiance profile export (format {EXPORT_FORMAT!r})")
        given = document.get("profile")
        if isinstance(given, dict):
            given, _ = migrate(given)  # an export from before areas had ids
        try:
            profile = Profile.model_validate(given)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in ("profile", *first["loc"]))
            raise InvalidInput(f"{where}: {first['msg']}") from None
        return self.put(profile) if replace else self.create(profile)

    # --- check-ins ----------------------------------------------------------------------

    def learn_checkins_soon(
        self, name: str, routine: Routine, taught: Mapping[str, tuple[Pressure, Hint]]
    ) -> None:
        """Let a profile learn a session's check-in answers (`learn_checkins`), written with
        the session's end in one transaction at the end of this turn of the loop: the
        profile as it is then learns, and a profile deleted meanwhile stays deleted."""

        def change(data: dict[str, Any]) -> dict[str, Any]:
            migrated, _ = migrate(data)
            profile = Profile.model_validate(migrated)
            learned = learn_checkins(profile, routine, taught)
            return learned.model_dump(mode="json", exclude={"warnings"})

        self.store.profiles.change_soon(name, change, at=self.clock.now())

    # --- feedback -----------------------------------------------------------------------

    def feedback(self, record: SessionRecord, feedback: Feedback) -> FeedbackTaken:
        """Keep the feedback on an ended session; its profile (if any) learns from it.

        Once per session: a second one is `AlreadyGiven` (a 409 naming the first), and
        nothing is learned from it. Only the stages the session reached count: answers
        about others are left out, learned from nowhere and listed in `ignored`. A stage
        the routine does not have is a NotFound, as before.
        """
        # Learnt against the person's own lengths, not those of a session fitted to the time.
        stored = Routine.model_validate(record.routine_data["routine"])
        routine = unfitted(stored, Fitted.load(record.routine_data.get("fitted")))
        feedback.check(routine)  # NotFound naming an unknown stage
        if record.active:
            raise Conflict("feedback comes after the session; end it first")
        reached = stages_reached([s.name for s in routine.stages], record.index, record.reached)
        named = [*feedback.pressure, *filter(None, [feedback.favourite_stage])]
        ignored = list(dict.fromkeys(name for name in named if name not in reached))
        kept = feedback.about(reached)
        data = kept.model_dump(mode="json")
        if ignored:
            data["ignored"] = ignored
        learned: Profile | None = None
        if record.profile is not None:
            try:
                profile = self.get(record.profile)
            except NotFound:
                profile = None  # the profile was deleted since: the feedback is kept all the same
            if profile is not None:
                # The check-in answers were learned at the session's end: the feedback's
                # words build on what the stages had after them.
                answered = _checkin_words(record)
                learned = learn(profile, feedback, routine, reached, answered)
        at = self.clock.now()
        feedback_id = self.store.feedback.add(
            record.id,
            record.profile,
            data,
            at,
            learned=None if learned is None else learned.model_dump(mode="json"),
        )
        given = FeedbackGiven(id=feedback_id, at=at, by=record.profile)
        return FeedbackTaken(given=given, profile=learned, ignored=ignored)


def _checkin_words(record: SessionRecord) -> dict[str, Hint]:
    """The words of a stored session's check-in answers, per stage (none before v6)."""
    checkins = Checkins(planned=[])
    checkins.load(record.checkins)
    return checkins.words()
