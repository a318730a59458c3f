"""What every music backend is asked for, and their settings.

A stage's scene says what should play (a playlist or tracks, a volume, fade and
crossfade seconds); the director turns that into a `MusicTarget`; the room's music
coordinator hands the newest target to the backend, which converges to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from ambiance.core.coordinator import Coordinator
from ambiance.core.views import MusicView, MusicWanted, PlayerView
from ambiance.devices.registry import Backend, BackendConfig, register

# --- what is asked ------------------------------------------------------------------------


@dataclass(frozen=True)
class MusicTarget:
    """What the room should sound like now."""

    playlist: str | None = None
    tracks: tuple[str, ...] = ()
    volume: float = 30.0  # percent
    fade: float = 3.0  # seconds to reach `volume` (and to fade out before a new playlist)
    crossfade: float = 0.0  # seconds between tracks
    stop: bool = False  # fade out and stop
    tempo: int | None = None  # the stage's strokes per minute, for those who care
    stage: str | None = None
    # A number that changes at each stage change when the room wants a chime first:
    # the backend plays its cue once per new value (coalesced: five quick taps, one cue).
    cue: int = 0

    def same_music(self, other: MusicTarget | None) -> bool:
        """True when `other` plays the same thing (only volume or fades may differ)."""
        return (
            other is not None
            and not other.stop
            and not self.stop
            and other.playlist == self.playlist
            and other.tracks == self.tracks
        )


@dataclass(frozen=True)
class MusicState:
    """The player as it is, for the API and the page."""

    state: Literal["play", "pause", "stop", "unknown"]
    volume: float | None = None  # percent
    playlist: str | None = None  # what we loaded, when it is ours
    song: str | None = None  # the current song's title or file
    elapsed: float | None = None


class MusicBackend(Protocol):
    """The music of one room. The coordinator alone calls it."""

    kind: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def read(self) -> MusicState: ...

    async def apply(self, target: MusicTarget) -> None:
        """Converge to `target`: load and play its music if it differs from what plays,
        fade the volume to its level; play the cue first when `target.cue` is new."""
        ...

    async def snapshot(self) -> Any:
        """Record what was playing before the session (queue, position, volume)."""
        ...

    async def restore(self, snapshot: Any, transition: float) -> None:
        """Fade out, then put back what `snapshot` recorded (or stop, as configured)."""
        ...

    def dump_snapshot(self, snapshot: Any) -> Any: ...

    def load_snapshot(self, data: Any) -> Any: ...


MusicCoordinator = Coordinator[MusicTarget, MusicState, Any]


# --- settings -----------------------------------------------------------------------------


class NoMusicConfig(BackendConfig):
    backend: Literal["none"] = "none"


def music_view(coordinator: MusicCoordinator) -> MusicView:
    """The room's music as the API shows it."""
    desired = coordinator.desired
    state = coordinator.state
    return MusicView(
        backend=coordinator.health.kind,
        synced=coordinator.synced,
        desired=None
        if desired is None
        else MusicWanted(**{**asdict(desired), "tracks": list(desired.tracks)}),
        player=None if state is None else PlayerView(**asdict(state)),
    )


register(
    Backend(
        slot="music",
        name="none",
        config=NoMusicConfig,
        build=lambda config, context: None,
    )
)
