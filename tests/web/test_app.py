"""The phone app in a real browser: Debian's Chromium, driven by Playwright at a phone's size.

The service runs in this test's event loop (uvicorn on a free loopback port) with a
FakeClock, the built-in scenes (routine `taster`) and a real Mosquitto broker, so that the
page shows phones on do-not-disturb and the music too. The test moves the clock itself.
Screenshots of every screen go to docs/screenshots/ (the README shows them).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from playwright.async_api import Locator, Page, async_playwright, expect

from ambiance.config import RoomConfig, Settings
from ambiance.core.profiles import Profile
from ambiance.infra.clock import FakeClock
from ambiance.infra.mqtt import MqttSettings
from ambiance.service import Ambiance
from api.app import create_app
from tests.http_server import serve
from tests.mosquitto import Mosquitto
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio

CHROMIUM = Path("/usr/bin/chromium")
LAN_HOST = "ambiance.test"
# Where a test opens the page: on this machine (a secure context), or as a phone on the
# home network sees it (plain HTTP to a name: not one).
ORIGINS = ["loopback", "lan"]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # A phone on the home network opens the page by the machine's name, which is not a
    # secure context (no wake lock, no service worker); 127.0.0.1 is one, and would hide
    # that. This name maps to loopback for the tests that open the page as a phone does.
    f"--host-resolver-rules=MAP {LAN_HOST} 127.0.0.1",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

if not CHROMIUM.exists():  # ./scripts/test installs it from Debian
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)


@dataclass
class Browser:
    page: Page
    base: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")


@asynccontextmanager
async def phone(base: str) -> AsyncIterator[Browser]:
    """A headless Chromium tab at a phone's size, recording every request and page error."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                color_scheme="dark",
            )
            page = await context.new_page()
            tab = Browser(page, base)
            page.on("request", lambda request: tab.requests.append(request.url))
            page.on("pageerror", lambda error: tab.errors.append(str(error)))
            page.on(
                "console",
                lambda message: (
                    tab.errors.append(message.text) if message.type == "error" else None
                ),
            )
            yield tab
        finally:
            await browser.close()


@asynccontextmanager
async def service(
    tmp_path: Path, broker: Mosquitto | None = None
) -> AsyncIterator[tuple[Ambiance, FakeClock, FastAPI]]:
    """The service with the built-in scenes; with a broker, a phone and MQTT music too."""
    room: dict[str, object] = {"title": "Bedroom", "routine": "taster"}
    if broker is not None:
        room |= {"phones": [{"name": "sams-pixel"}], "music": {"backend": "mqtt"}}
    settings = Settings(
        data_dir=tmp_path,
        rooms={"bedroom": RoomConfig.model_validate(room)},
        mqtt=MqttSettings() if broker is None else mqtt_settings(broker),
    )
    clock = FakeClock()
    async with Ambiance(settings, clock=clock) as core:  # the built-in scenes and routines
        if broker is not None:
            assert await core.mqtt.wait_ready(10)
        core.profiles.create(Profile(name="sam", display_name="Sam", pressure="firm"))
        yield core, clock, create_app(core)


@asynccontextmanager
async def serve_at(app: FastAPI, origin: str) -> AsyncIterator[str]:
    """Serve `app` (tests/http_server.py); its base URL as a phone at `origin` opens it."""
    async with serve(app) as base:
        yield base.replace("127.0.0.1", LAN_HOST) if origin == "lan" else base


def loopback(base: str) -> str:
    """The same server from this test's own HTTP client (the LAN name is the browser's)."""
    return base.replace(LAN_HOST, "127.0.0.1")


async def secure(page: Page) -> bool:
    return bool(await page.evaluate("window.isSecureContext"))


def light(page: Page, where: str, light_id: str = "1") -> tuple[Locator, Locator]:
    """The text and the bulb of one light in a room panel (`where` is a CSS scope)."""
    scope = page.locator(f'{where} [data-light="{light_id}"]')
    return scope.locator(".light-value"), scope.locator(".bulb")


async def background(locator: Locator) -> str:
    return str(await locator.evaluate("node => getComputedStyle(node).backgroundColor"))


@pytest.mark.parametrize("origin", ORIGINS)
async def test_a_whole_massage_from_the_phone(
    tmp_path: Path, origin: str, mosquitto: Mosquitto
) -> None:
    async with (
        service(tmp_path, mosquitto) as (core, clock, app),
        serve_at(app, origin) as base,
        phone(base) as tab,
    ):
        page = tab.page
        await page.goto(base + "/")
        assert await secure(page) is (origin == "loopback")  # a phone on the LAN: not

        # Home: the room, its routine and whom it is for.
        card = page.locator('.room-card[data-room="bedroom"]')
        await expect(card.locator("h2")).to_have_text("Bedroom")
        await expect(card.locator("select").first).to_have_value("taster")
        await expect(card.locator(".status")).to_have_text("Ready when you are")
        value, bulb = light(page, ".room-card")
        await expect(value).to_have_text(re.compile(r"^\d+ %"))
        before_text = await value.text_content()
        before_colour = await background(bulb)
        await expect(card.locator(".phone")).to_have_text("sams-pixel: as usual")
        await card.locator("select").nth(1).select_option("sam")
        await tab.shot("home")

        # One tap: spa mode. The first stage is untimed: "when you're ready".
        await card.get_by_role("button", name="Spa mode").tap()
        await expect(page.locator("#stage-title")).to_have_text("Getting ready")
        await expect(page.locator("#guidance-summary")).to_contain_text("A quick set-up")
        await expect(page.locator("#guidance-caution")).to_contain_text("check with a doctor")
        await expect(page.locator("#stage-left")).to_have_text("when you're ready")
        await expect(page.locator("#session-where")).to_contain_text("for Sam · 1 of 4")
        value, bulb = light(page, "#session-room")
        await expect(value).to_have_text("40 % · 2700 K")
        assert await background(bulb) != before_colour
        await expect(page.locator("#session-room .phone")).to_have_text(
            "sams-pixel: do not disturb"
        )
        await expect(page.locator("#session-room .music")).to_contain_text("ambiance-calm at 30 %")

        # Ready: the long strokes, timed, with a pulse at their tempo.
        await page.locator("#ready").tap()
        await expect(page.locator("#stage-title")).to_have_text("Long, gliding strokes")
        await expect(page.locator("#stage-left")).to_have_text(re.compile(r"^(2:00|1:5\d)$"))
        await expect(page.locator("#total-left")).to_have_text(re.compile(r"^(5:00|4:5\d) in all$"))
        await expect(page.locator("#tempo")).to_contain_text("12 strokes a minute")
        await expect(page.locator("#pulse")).to_have_css("animation-duration", "5s")
        await expect(page.locator("#ready")).to_be_hidden()
        await expect(value).to_have_text("25 % · 2400 K")
        await tab.shot("session")

        # Two minutes pass (on the server's clock): kneading, with its own time and tempo.
        clock.advance(120)
        await expect(page.locator("#stage-title")).to_have_text("Kneading the shoulders")
        await expect(page.locator("#stage-left")).to_have_text(re.compile(r"^(2:00|1:5\d)$"))
        await expect(page.locator("#total-left")).to_have_text(re.compile(r"^(3:00|2:5\d) in all$"))
        await expect(page.locator("#pulse")).to_have_css("animation-duration", "1.5s")
        await expect(value).to_have_text("28 % · 2400 K")
        await expect(page.locator("#session-room .music")).to_contain_text("ambiance-deep")

        # Pause and resume; next and back.
        await page.locator("#pause").tap()
        await expect(page.locator("#pause")).to_have_text("Resume")
        await expect(page.locator("#stage-left-label")).to_have_text("paused")
        await page.locator("#pause").tap()
        await expect(page.locator("#pause")).to_have_text("Pause")
        await page.locator("#next").tap()
        await expect(page.locator("#stage-title")).to_have_text("A quiet minute")
        await expect(page.locator("#stage-left")).to_have_text(re.compile(r"^(1:00|0:5\d)$"))
        await expect(page.locator("#pulse")).to_have_class(re.compile(r"\bstill\b"))
        await page.locator("#previous").tap()
        await expect(page.locator("#stage-title")).to_have_text("Kneading the shoulders")
        await tab.shot("session-kneading")

        # End, after confirming; the room goes back as it was.
        await page.locator("#end").tap()
        await expect(page.locator("#confirm-end")).to_be_visible()
        await page.locator("#confirm-end-yes").tap()
        await expect(page.locator("#feedback h1")).to_have_text("How was it?")
        await expect(page.locator("#restored")).to_have_text("The room is back as it was.")
        value, bulb = light(page, "#feedback-room")
        await expect(value).to_have_text(before_text or "")
        assert await background(bulb) == before_colour
        await expect(page.locator("#feedback-room .phone")).to_have_text("sams-pixel: as usual")

        # Feedback: only the stages of that session where hands were at work.
        stages = page.locator("#pressure .stage-pressure")
        await expect(stages).to_have_count(3)
        await expect(stages.locator("p")).to_have_text(
            ["Long, gliding strokes", "Kneading the shoulders", "A quiet minute"]
        )
        await expect(page.locator("#send")).to_be_disabled()
        await page.locator("#rating label").nth(4).tap()
        await page.locator('[data-stage="effleurage"] label').nth(1).tap()
        await page.locator('[data-stage="petrissage"] label').nth(2).tap()
        await page.locator("#favourite").select_option("petrissage")
        await page.locator("#notes").fill("Lovely on the shoulders")
        await page.locator("#notes").blur()
        await page.evaluate("window.scrollTo(0, 0)")
        await tab.shot("feedback")
        await page.locator("#send").tap()
        await expect(page.locator("#thanks h1")).to_have_text("Thank you")
        await expect(page.locator("#thanks-text")).to_have_text(
            "Sam's profile has learned from it."
        )
        await tab.shot("thanks")
        await page.locator("#home-button").tap()
        await expect(card.get_by_role("button", name="Spa mode")).to_be_visible()
        await expect(card.locator(".rate")).to_be_hidden()

        # The feedback reached the store.
        async with httpx.AsyncClient(base_url=loopback(base), timeout=10) as client:
            (summary,) = (await client.get("/api/v1/sessions", params={"room": "bedroom"})).json()
            detail = (await client.get(f"/api/v1/sessions/{summary['id']}")).json()
        (stored,) = detail["feedback"]
        assert stored["profile"] == "sam"
        feedback = stored["data"]
        assert feedback["rating"] == 5
        assert feedback["pressure"] == {"effleurage": "right", "petrissage": "firmer"}
        assert feedback["favourite_stage"] == "petrissage"
        assert feedback["notes"] == "Lovely on the shoulders"
        assert core.profiles.get("sam").favourite_stage == "petrissage"

        # Nothing but the server: no CDN, no fonts, no polling of anything else.
        assert tab.requests
        assert all(url.startswith(base + "/") for url in tab.requests), tab.requests
        events = [url for url in tab.requests if "/api/v1/events" in url]
        assert len(events) == 1, events  # one stream, never dropped, no polling
        assert tab.errors == []


@pytest.mark.parametrize("origin", ORIGINS)
async def test_two_phones_feedback_once_then_your_turn(tmp_path: Path, origin: str) -> None:
    """Two phones on one massage: the form asks only about what happened, the second phone
    is told the feedback was given, and offers "Your turn?" for the other person."""
    async with (
        service(tmp_path) as (core, _, app),
        serve_at(app, origin) as base,
        phone(base) as one,
        phone(base) as two,
    ):
        core.profiles.create(Profile(name="alex", display_name="Alex"))
        await one.page.goto(base + "/")
        await two.page.goto(base + "/")
        card = one.page.locator('.room-card[data-room="bedroom"]')
        await card.locator("select").nth(1).select_option("sam")
        await card.get_by_role("button", name="Spa mode").tap()
        for tab in (one, two):  # the second phone follows the session by itself
            await expect(tab.page.locator("#stage-title")).to_have_text("Getting ready")
        await one.page.locator("#ready").tap()
        for tab in (one, two):
            await expect(tab.page.locator("#stage-title")).to_have_text("Long, gliding strokes")

        # Ended after the long strokes: kneading and the quiet minute never came.
        await one.page.locator("#end").tap()
        await one.page.locator("#confirm-end-yes").tap()
        for tab in (one, two):
            page = tab.page
            await expect(page.locator("#feedback h1")).to_have_text("How was it?")
            rows = page.locator("#pressure .stage-pressure")
            await expect(rows.locator("p")).to_have_text(["Long, gliding strokes"])
            await expect(page.locator("#favourite option")).to_have_text(
                ["—", "Getting ready", "Long, gliding strokes"]
            )

        # The first phone sends; the second is told, and sends nothing.
        await one.page.locator("#rating label").nth(3).tap()
        await one.page.locator('[data-stage="effleurage"] label').nth(2).tap()
        await one.page.locator("#send").tap()
        await expect(one.page.locator("#thanks-title")).to_have_text("Thank you")
        await expect(two.page.locator("#thanks-title")).to_have_text("Already given")
        await expect(two.page.locator("#thanks-text")).to_contain_text(
            "Sam's feedback on this massage was given at"
        )

        # Your turn? For the other person (not Sam again), any routine.
        turn = two.page.locator("#turn")
        await expect(turn).to_be_visible()
        await expect(turn.locator("h2")).to_have_text("Your turn?")
        await expect(two.page.locator("#turn-profile option")).to_have_text(["Alex", "No profile"])
        await expect(two.page.locator("#turn-routine")).to_have_value("taster")
        await expect(one.page.locator("#turn-profile")).to_have_value("alex")
        await two.page.get_by_role("button", name="Start their massage").tap()
        for tab in (one, two):  # the first phone, on its thank-you screen, follows too
            await expect(tab.page.locator("#session-where")).to_contain_text("for Alex · 1 of 4")

        # The two sessions are linked in the history; Sam learned once.
        async with httpx.AsyncClient(base_url=loopback(base), timeout=10) as client:
            history = (await client.get("/api/v1/sessions", params={"room": "bedroom"})).json()
            second, first = history
            detail = (await client.get(f"/api/v1/sessions/{first['id']}")).json()
        assert (second["profile"], second["follows"]) == ("alex", first["id"])
        assert (first["profile"], first["followed_by"]) == ("sam", second["id"])
        assert len(detail["feedback"]) == 1
        assert detail["feedback"][0]["data"]["pressure"] == {"effleurage": "firmer"}
        sam = core.profiles.get("sam")
        assert (sam.sessions, sam.stage_pressure) == (1, {"effleurage": "firm"})
        assert one.errors == [] and two.errors == []


@pytest.mark.parametrize("origin", ORIGINS)
async def test_how_long_offers_what_the_routine_can_take_and_the_session_shows_it(
    tmp_path: Path,
    origin: str,
) -> None:
    async with (
        service(tmp_path) as (core, _, app),
        serve_at(app, origin) as base,
        phone(base) as tab,
        httpx.AsyncClient(base_url=loopback(base), timeout=10) as client,
    ):
        page = tab.page
        await page.goto(base + "/")
        card = page.locator('.room-card[data-room="bedroom"]')
        how_long = card.get_by_label("How long?")

        # The classic routine: its own length first, then lengths it can take.
        await card.get_by_label("Routine").select_option("classic")
        reach = (await client.get("/api/v1/routines/classic/fit")).json()
        options = how_long.locator("option")
        await expect(options.first).to_have_text(f"As written · {round(reach['own'])} min")
        await expect(options).not_to_have_count(1)
        values = [int(v) for v in await options.evaluate_all("os => os.map(o => o.value)") if v]
        assert values == sorted(values)
        assert all(reach["shortest"] <= m <= reach["longest"] for m in values), (values, reach)
        assert any(m < reach["own"] for m in values) and any(m > reach["own"] for m in values)
        shorter = max(m for m in values if m < reach["own"])
        await how_long.select_option(str(shorter))

        # Spa mode fitted to it: the stages' lengths add up to it.
        await card.get_by_role("button", name="Spa mode").tap()
        await expect(page.locator("#stage-title")).to_have_text("Getting ready")
        await expect(page.locator("#plan-total")).to_have_text(
            f"The stages, fitted to the {shorter} minutes you have: {shorter} min in all"
        )
        await expect(page.locator("#total-left")).to_have_text(f"{shorter}:00 in all")
        session = core.room("bedroom").session
        assert session is not None and session.fitted is not None
        assert session.fitted.minutes == shorter
        plan = page.locator("#plan li")
        await expect(plan).to_have_count(len(session.routine.stages))
        await expect(plan.locator(".plan-length")).to_have_text(
            [
                "when ready"
                if s.duration is None
                else f"{int(s.duration) // 60}:{int(s.duration) % 60:02d}"
                for s in session.routine.stages
            ]
        )
        await expect(plan.first).to_have_class("now")
        await page.locator("#ready").tap()
        await expect(plan.nth(1)).to_have_class("now")
        await expect(page.locator("#stage-left")).to_have_text(
            re.compile(rf"^{int(session.routine.stages[1].duration or 0) // 60}:")
        )
        await page.locator("#end").tap()
        await page.locator("#confirm-end-yes").tap()
        await expect(page.locator("#feedback h1")).to_have_text("How was it?")
        await page.locator("#skip").tap()
        await page.locator("#home-button").tap()

        # Another routine, other lengths: the taster cannot be made shorter than it is.
        await card.get_by_label("Routine").select_option("taster")
        taster = (await client.get("/api/v1/routines/taster/fit")).json()
        await expect(options.first).to_have_text(f"As written · {round(taster['own'])} min")
        values = [int(v) for v in await options.evaluate_all("os => os.map(o => o.value)") if v]
        assert all(taster["own"] < m <= taster["longest"] for m in values), (values, taster)
        # As written sends no length: the routine's own.
        await how_long.select_option("")
        await card.get_by_role("button", name="Spa mode").tap()
        await expect(page.locator("#plan-total")).to_have_text(
            f"The stages: {round(taster['own'])} min in all"
        )
        session = core.room("bedroom").session
        assert session is not None and session.fitted is None
        assert tab.errors == []


@pytest.mark.parametrize("origin", ORIGINS)
async def test_a_pressure_check_in_shows_big_with_one_tap_answers(
    tmp_path: Path, origin: str
) -> None:
    """The check-in falls due on the server's clock: the question above the fold with four
    large answers, well apart; an answer changes the pressure wording at once."""
    async with (
        service(tmp_path) as (core, clock, app),
        serve_at(app, origin) as base,
        phone(base) as tab,
    ):
        page = tab.page
        await page.goto(base + "/")
        assert await secure(page) is (origin == "loopback")  # a phone on the LAN: not
        card = page.locator('.room-card[data-room="bedroom"]')
        await card.locator("select").nth(1).select_option("sam")
        await card.get_by_role("button", name="Spa mode").tap()
        await page.locator("#ready").tap()
        await expect(page.locator("#stage-title")).to_have_text("Long, gliding strokes")
        checkin = page.locator("#checkin")
        await expect(checkin).to_be_hidden()
        pressure = page.locator("#guidance-pressure")
        await expect(pressure).to_contain_text("Use medium pressure for Sam here.")

        session = core.room("bedroom").session
        assert session is not None
        at = session.checkins.next_at("effleurage")
        assert at is not None
        clock.advance(at)
        await expect(checkin).to_be_visible()
        await expect(page.locator("#checkin-prompt")).to_have_text(
            "How is the pressure, 1 to 10? More, less or the same?"
        )
        await expect(page.locator("#checkin-guidance")).to_contain_text("held breath")
        answers = checkin.get_by_role("button")
        await expect(answers).to_have_text(["Softer", "Same", "Firmer", "Too much"])
        # Above the fold and clear of the controls at the bottom; big, and well apart.
        bar = await page.locator("#session .bottom").bounding_box()
        prompt = await page.locator("#checkin-prompt").bounding_box()
        assert bar is not None and prompt is not None
        assert (
            float(
                await page.locator("#checkin-prompt").evaluate(
                    "node => parseFloat(getComputedStyle(node).fontSize)"
                )
            )
            >= 24
        )
        boxes = []
        for index in range(4):
            box = await answers.nth(index).bounding_box()
            assert box is not None
            assert box["height"] >= 64 and box["width"] >= 120, box
            assert box["y"] >= 0 and box["y"] + box["height"] <= bar["y"], (box, bar)
            boxes.append(box)
        for a, b in itertools.combinations(boxes, 2):
            apart_x = max(b["x"] - (a["x"] + a["width"]), a["x"] - (b["x"] + b["width"]))
            apart_y = max(b["y"] - (a["y"] + a["height"]), a["y"] - (b["y"] + b["height"]))
            assert max(apart_x, apart_y) >= 12, (a, b)

        # One tap: the wording changes at once, here and in the stage's pressure line.
        await answers.nth(0).tap()
        await expect(page.locator("#checkin-said")).to_have_text(
            "They asked for softer: lighten a step, to 3-4 of 10."
        )
        await expect(page.locator("#checkin-answers")).to_be_hidden()
        await expect(page.locator("#checkin-label")).to_have_text("They said: softer")
        await expect(pressure).to_contain_text("Use a soft touch for Sam here.")
        await expect(pressure).not_to_contain_text("medium pressure")

        # The kneading asks again; "too much" eases off now, plainly.
        clock.advance(session.deadline - clock.now())  # type: ignore[operator]
        await expect(page.locator("#stage-title")).to_have_text("Kneading the shoulders")
        await expect(checkin).to_be_hidden()  # answered in the strokes: gone with them
        await expect(pressure).to_contain_text("Lighter than planned")
        at = session.checkins.next_at("petrissage")
        assert at is not None
        clock.advance(at)
        await expect(page.locator("#checkin-answers")).to_be_visible()
        await checkin.get_by_role("button", name="Too much").tap()
        await expect(page.locator("#checkin-said")).to_contain_text("Ease off now")
        await expect(page.locator("#checkin-said")).to_have_class(re.compile(r"\bease-off\b"))
        await expect(pressure).to_have_class(re.compile(r"\bease-off\b"))
        await expect(pressure).to_contain_text("Ease off now: it was too much.")
        assert [
            c["answer"]
            for c in (await page.evaluate("fetch('/api/v1/rooms/bedroom').then(r => r.json())"))[
                "session"
            ]["checkins"]
        ] == ["softer", "too_much"]
        assert tab.errors == []


async def test_the_app_shell_is_served(tmp_path: Path) -> None:
    async with (
        service(tmp_path) as (_, _, app),
        serve(app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):
        index = await client.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        # A later CSP without 'unsafe-inline': no inline script, style or handlers.
        html = index.text
        assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/app.js" defer>']
        assert not re.search(r"\son[a-z]+\s*=", html)
        assert "<style" not in html
        assert " style=" not in html
        assert "http://" not in html and "https://" not in html

        manifest = await client.get("/manifest.webmanifest")
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        body = json.loads(manifest.text)
        assert (body["short_name"], body["display"], body["start_url"]) == (
            "ambiance",
            "standalone",
            "/",
        )
        for icon in body["icons"]:
            png = await client.get(icon["src"])
            assert png.status_code == 200
            assert png.headers["content-type"] == "image/png"
            assert png.content.startswith(b"\x89PNG\r\n\x1a\n")

        sw = await client.get("/sw.js")
        assert sw.headers["content-type"].startswith("text/javascript")
        assert "/api/" in sw.text
        for path, kind in [("/app.js", "text/javascript"), ("/app.css", "text/css")]:
            response = await client.get(path)
            assert response.headers["content-type"].startswith(kind)
            assert "no-cache" in response.headers["cache-control"]

        # The API and its docs keep their own answers.
        assert (await client.get("/docs")).status_code == 200
        missing = await client.get("/api/v1/nothing")
        assert missing.status_code == 404
        assert (await client.get("/icons/nothing.png")).status_code == 404


def require_token(app: FastAPI, token: str) -> None:
    """What a later issue adds on the server: a bearer token (in the query for events)."""

    @app.middleware("http")
    async def check(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/api/"):
            given = request.headers.get("authorization") == f"Bearer {token}"
            if request.url.path == "/api/v1/events":
                given = given or request.query_params.get("access_token") == token
            if not given:
                return Response(status_code=401)
        return await call_next(request)


async def test_the_app_asks_for_a_token_once_and_sends_it(tmp_path: Path) -> None:
    async with service(tmp_path) as (_, _, app):
        require_token(app, "s3cret")
        async with serve(app) as base, phone(base) as tab:
            page = tab.page
            headers: list[tuple[str, str | None]] = []
            page.on(
                "request",
                lambda request: headers.append((request.url, request.headers.get("authorization"))),
            )

            # Asked once, with a small form; then everything works and is authorised.
            await page.goto(base + "/")
            await expect(page.locator("#token-dialog")).to_be_visible()
            await page.locator("#token-input").fill("s3cret")
            await page.locator("#token-dialog button").tap()
            await expect(page.locator("#token-dialog")).to_be_hidden()
            await expect(page.locator(".room-card h2")).to_have_text("Bedroom")
            await expect(page.locator(".room-card .status")).to_have_text("Ready when you are")
            assert await page.evaluate("localStorage.getItem('ambiance.token')") == "s3cret"
            events = [url for url, _ in headers if "/api/v1/events" in url]
            assert events and all("access_token=s3cret" in url for url in events)

            # A token in the address is taken, kept, and removed from the address bar.
            await page.evaluate("localStorage.clear()")
            headers.clear()
            await page.goto("about:blank")  # a fresh load, as from a link
            await page.goto(base + "/#token=s3cret")
            await expect(page.locator(".room-card .status")).to_have_text("Ready when you are")
            assert page.url == base + "/"
            await expect(page.locator("#token-dialog")).to_be_hidden()
            api = [
                (url, auth) for url, auth in headers if "/api/v1/" in url and "events" not in url
            ]
            assert api and all(auth == "Bearer s3cret" for _, auth in api)
            assert tab.errors == [] or all("401" in error for error in tab.errors)


async def test_the_page_opened_with_its_token_link_works_with_the_real_auth(
    tmp_path: Path,
) -> None:
    """`auth.required: always`, the security headers and the CSP: the link serve prints."""
    from ambiance.infra.auth import AuthSettings
    from ambiance.infra.store import Tokens

    token = Tokens(tmp_path).reset()
    settings = Settings(
        data_dir=tmp_path,
        rooms={"bedroom": RoomConfig(title="Bedroom", routine="taster")},
        auth=AuthSettings(required="always"),
    )
    async with Ambiance(settings, clock=FakeClock()) as core:
        app = create_app(core)
        async with serve(app) as base, phone(base) as tab:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                assert (await client.get("/api/v1/rooms")).status_code == 401
            await tab.page.goto(f"{base}/#token={token}")
            await expect(tab.page.locator(".room-card .status")).to_have_text("Ready when you are")
            await expect(tab.page.locator("#token-dialog")).to_be_hidden()
            assert tab.page.url == base + "/"
            await tab.page.locator(".room-card").get_by_role("button", name="Spa mode").tap()
            await expect(tab.page.locator("#stage-title")).to_have_text("Getting ready")
            assert tab.errors == []  # no 401, no CSP violation
