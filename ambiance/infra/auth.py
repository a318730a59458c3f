"""Access control, the part that is not web code: who needs the API token, and the link.

The token itself is stored data: `Tokens` (ambiance/infra/store/tokens.py) keeps its
salted hash in `<data dir>/auth.json`; `Store.tokens` is the service's.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LOOPBACK_NAMES = {"localhost"}


class AuthSettings(BaseModel):
    """Who may use the API (`auth:` in the config, `AMBIANCE_AUTH__*` in the environment)."""

    model_config = ConfigDict(extra="forbid")

    required: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="auto: a token is needed whenever the service listens beyond loopback "
        "(host other than 127.0.0.1, ::1, localhost). Behind a reverse proxy on the same "
        "machine, use always.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Web origins allowed to call the API from a browser; none by default.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, le=16 * 1024 * 1024, description="Largest request body."
    )


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name or "0.0.0.0"/"" (every interface): reachable from the LAN


def token_required(auth: AuthSettings, host: str) -> bool:
    if auth.required == "always":
        return True
    if auth.required == "never":
        return False
    return not is_loopback(host)


def page_link(base_url: str, token: str) -> str:
    """The page's address with the token in the fragment (never sent to the server)."""
    return f"{base_url.rstrip('/')}/#token={token}"
