"""Today's questions and a profile's health answers in the phone app, in Debian's Chromium
(the service, the browser and the fixtures of test_app.py).

Which area to answer "sore" comes from the routine as written (an area its first timed
stage works), so the routines' words can change without these tests changing."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from ambiance.core.areas import AREAS
from ambiance.core.engine import Session
from ambiance.core.scenes import Routine
from ambiance.service import Ambiance
from tests.http_server import serve
from tests.web.test_app import ORIGINS, phone, serve_at, service

pytestmark = pytest.mark.anyio

QUESTIONS = [
    "Fever or feeling unwell?",
    "Painkillers or alcohol today?",
    "Anything sore? Where?",
    "A calf that is swollen, warm and painful?",
]


def first_massage_area(routine: Routine) -> str:
    stage = next(s for s in routine.stages if s.timed)
    worked = [a for step in stage.guidance.steps for a in step.areas or () if not AREAS[a].caution]
    assert worked, f"{routine.name}: its first timed stage names no area it works"
    return worked[0]


def live(core: Ambiance) -> Session:
    session = core.room("bedroom").session
    assert session is not None
    return session


async def spa_mode(page: Page, base: str, profile: str = "sam") -> None:
    await page.goto(base + "/")
    card = page.locator('.room-card[data-room="bedroom"]')
    await card.get_by_label("For whom").select_option(profile)
    await card.get_by_role("button", name="Spa mode").tap()
    await expect(page.locator("#stage-left")).to_have_text("when you're ready")


@pytest.mark.parametrize("origin", ORIGINS)
async def test_the_days_questions_while_getting_ready_leave_a_sore_area_out(
    tmp_path: Path,
    origin: str,
) -> None:
    async with (
        service(tmp_path) as (core, _, app),
        serve_at(app, origin) as base,
        phone(base) as one,
        phone(base) as two,
    ):
        written = core.library.routine(core.room("bedroom").config.routine)
        area = first_massage_area(written)
        await spa_mode(one.page, base)
        await two.page.goto(base + "/")  # the second phone follows the session by itself
        for tab in (one, two):  # every phone asks, each with big one-tap answers
            questions = tab.page.locator("#today .question .toggle .question-text")
            await expect(questions).to_have_text(QUESTIONS)
            await expect(tab.page.locator("#today .toggle .answer")).to_have_text(["No"] * 4)
        for toggle in await one.page.locator("#today .toggle").all():
            box = await toggle.bounding_box()
            assert box is not None and box["height"] >= 48

        # Sore: where? The areas by their plain names.
        page = one.page
        sore = page.locator('#today [data-question="sore"]')
        await expect(sore.locator(".areas")).to_be_hidden()
        await sore.locator(".toggle").tap()
        await expect(sore.locator(".answer")).to_have_text("Yes")
        await sore.get_by_role("button", name=AREAS[area].name, exact=True).tap()
        await expect(
            sore.get_by_role("button", name=AREAS[area].name, exact=True)
        ).to_have_attribute("aria-pressed", "true")
        await page.locator("#ready").tap()

        # The massage begins without that area, on every phone.
        for tab in (one, two):
            await expect(tab.page.locator("#stage-left")).not_to_have_text("when you're ready")
            await expect(tab.page.locator("#today")).to_be_hidden()
            await expect(tab.page.locator("#guidance-caution")).to_contain_text(
                f"Also leave out today: {AREAS[area].name}"
            )
        session = live(core)
        assert session.index > 0 and session.today_answered
        for step in session.stage.guidance.steps:
            assert area not in (step.areas or ()), step.text
        texts = await page.locator("#guidance-steps li").all_text_contents()
        assert texts == session.stage.guidance.texts
        assert one.errors == [] and two.errors == []


@pytest.mark.parametrize("origin", ORIGINS)
async def test_a_fever_says_why_and_just_the_quiet_room_starts_it(
    tmp_path: Path, origin: str
) -> None:
    async with (
        service(tmp_path) as (core, _, app),
        serve_at(app, origin) as base,
        phone(base) as one,
        phone(base) as two,
    ):
        await spa_mode(one.page, base)
        await two.page.goto(base + "/")
        await expect(two.page.locator("#today")).to_be_visible()
        refused = live(core).id
        await one.page.locator('#today [data-question="fever_or_unwell"] .toggle').tap()
        await one.page.locator("#ready").tap()

        # No massage: the plain explanation, on this phone with why; on the other too.
        for tab in (one, two):
            page = tab.page
            await expect(page.locator("#not-today h1")).to_have_text("No massage today")
            await expect(page.locator("#not-today-text")).to_contain_text("Nothing of the massage")
            await expect(page.locator("#feedback")).to_be_hidden()  # nothing to rate
        await expect(one.page.locator("#not-today-why li")).to_have_count(1)
        await expect(one.page.locator("#not-today-why li")).to_contain_text("rest")
        await expect(two.page.locator("#not-today-why li")).to_have_count(0)  # the asker's only
        room = core.room("bedroom")
        assert room.session is None
        assert room.last_session is not None
        assert (room.last_session.id, room.last_session.end_reason) == (refused, "not_today")
        assert room.last_session.reached == ["prepare"]

        # Just the quiet room: the room without the massage, for Sam, on both phones.
        await one.page.get_by_role("button", name="Just the quiet room").tap()
        for tab in (one, two):
            await expect(tab.page.locator("#session-where")).to_contain_text("for Sam")
            await expect(tab.page.locator("#today")).to_be_hidden()  # nothing to ask
        session = live(core)
        assert (session.routine.name, session.profile) == ("quiet-room", "sam")
        # The refusal's 409 is the browser's one console line; nothing else went wrong.
        assert [e for e in one.errors if "status of 409" not in e] == [] and two.errors == []


async def test_a_profiles_health_answers_edited_make_the_next_session_side_lying(
    tmp_path: Path,
) -> None:
    async with service(tmp_path) as (core, _, app), serve(app) as base, phone(base) as tab:
        page = tab.page
        await page.goto(base + "/")
        card = page.locator('.room-card[data-room="bedroom"]')
        health = card.get_by_role("button", name="Health questions")
        await expect(health).to_be_hidden()  # no profile picked: no one to ask about
        await card.get_by_label("For whom").select_option("sam")
        await health.tap()

        dialog = page.locator("#health-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("#health-title")).to_have_text("Health: Sam")
        await expect(dialog.locator(".question")).to_have_count(8)
        await expect(dialog.locator(".answer")).to_have_text(["No"] * 8)
        for toggle in await dialog.locator(".toggle").all():
            box = await toggle.bounding_box()
            assert box is not None and box["height"] >= 48
        await dialog.locator('[data-question="pregnant"] .toggle').tap()
        await dialog.get_by_role("button", name="Save").tap()
        await expect(dialog).to_be_hidden()
        health_answers = core.profiles.get("sam").health
        assert health_answers.pregnant is True
        # Only what was changed: the questions left alone stay unanswered.
        assert health_answers.model_dump(exclude_none=True) == {"pregnant": True}

        # Shown again on asking, as saved.
        await health.tap()
        await expect(dialog.locator('[data-question="pregnant"] .answer')).to_have_text("Yes")
        await dialog.get_by_role("button", name="Cancel").tap()
        await expect(dialog).to_be_hidden()
        await expect(dialog.locator(".question")).to_have_count(0)  # not left in the page

        # The next session: side-lying, never face down.
        await card.get_by_role("button", name="Spa mode").tap()
        await expect(page.locator("#stage-left")).to_have_text("when you're ready")
        session = live(core)
        positions = {session.routine.position_of(stage) for stage in session.routine.stages}
        assert "face_down" not in positions and "side_lying" in positions
        view = core.room("bedroom").view()
        assert view.session is not None and view.session.stage.position == "side_lying"
        assert tab.errors == []
