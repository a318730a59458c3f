"""Profiles and feedback, kept in the store: the people side of the service.

The rules (how a profile adapts a session, how feedback teaches it) are pure functions
in profiles.py; this module only reads and writes them.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from ambiance.core.areas import migrate_area
from ambiance.core.profiles import MAX_FREE_AREAS, Feedback, Profile, learn
from ambiance.core.scenes import Routine
from ambiance.errors import Conflict, InvalidInput, NotFound
from ambiance.infra.clock import Clock
from ambiance.infra.store import SessionRecord, Store

log = logging.getLogger(__name__)

EXPORT_FORMAT = "ambiance.profile/1"
EXPORT_FEEDBACK = 1000  # the most feedback an export carries (the newest)


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

    # --- feedback -----------------------------------------------------------------------

    def feedback(self, record: SessionRecord, feedback: Feedback) -> Profile | None:
        """Keep the feedback on a session; its profile (if any) learns from it."""
        routine = Routine.model_validate(record.routine_data["routine"])
        feedback.check(routine)  # InvalidInput naming an unknown stage
        if record.active:
            raise Conflict("feedback comes after the session; end it first")
        self.store.feedback.add(
            record.id, record.profile, feedback.model_dump(mode="json"), self.clock.now()
        )
        if record.profile is None:
            return None
        try:
            profile = self.get(record.profile)
        except NotFound:
            return None  # the profile was deleted since: the feedback is kept all the same
        return self.put(learn(profile, feedback, routine))
