"""Outside state checked field by field: what is valid is kept, the rest left out and said
once per device and field, in a line that does not grow with the input."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, ConfigDict, Field

from ambiance.devices.outside import Reports


class Toy(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    level: int | None = Field(default=None, ge=0, le=10)
    name: str | None = Field(default=None, max_length=8)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_good_fields_stay_bad_ones_go_and_are_said_once(caplog: pytest.LogCaptureFixture) -> None:
    reports = Reports(Toy, "toys")
    for _ in range(3):
        assert reports.valid("a", {"level": 11, "name": "ok", "other": [1]}) == {"name": "ok"}
    assert reports.valid("b", {"level": 11}) == {}  # another device: said for it too
    assert reports.valid("a", {"level": 3, "name": "x" * 9}) == {"level": 3}  # a new field
    said = warnings(caplog)
    assert len(said) == 3
    assert said[0].startswith("toys: a sent level 11, which is not valid (Input should be less")


def test_null_is_not_said(caplog: pytest.LogCaptureFixture) -> None:
    assert Reports(Toy, "toys").valid("a", {"level": None, "name": None}) == {}
    assert warnings(caplog) == []


def test_a_huge_value_is_cut_short_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    Reports(Toy, "toys").valid("a", {"name": "x" * 1_000_000})
    Reports(Toy, "toys").valid("a", {"level": [list(range(1000))] * 1000})
    assert all(len(line) < 400 for line in warnings(caplog)), warnings(caplog)
    assert len(warnings(caplog)) == 2
