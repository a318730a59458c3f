"""What the player did before the session (`MpdSnapshot`), taken and put back exactly."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from ambiance.devices.music.mpd.client import (
    MpdConnection,
    PlayerRefused,
    PlayState,
    as_float,
    as_int,
    state_of,
    volume_of,
)
from ambiance.devices.music.mpd.fades import Fader

log = logging.getLogger(__package__)  # the package's: "ambiance.devices.music.mpd"


@dataclass(frozen=True)
class MpdSnapshot:
    """What the player did before the session: enough to put it back exactly.

    `snapshot()` hands it over as `to_json()`, since the store keeps a session's snapshots
    as JSON (so that a room is still put back after a restart); `restore()` reads it back.
    """

    state: PlayState
    queue: tuple[str, ...]  # files (or URIs), in order
    song: int | None  # position in `queue` of the current song
    elapsed: float | None  # seconds into it
    volume: int | None  # None: the player has no mixer
    random: bool
    repeat: bool
    single: str  # "0", "1" or "oneshot"
    consume: str  # "0", "1" or "oneshot" (MPD 0.24)
    crossfade: int  # seconds

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["queue"] = list(self.queue)
        return data

    @classmethod
    def from_json(cls, data: Any) -> MpdSnapshot:
        """Read back `to_json()`; ValueError when `data` is not one."""
        try:
            state = data["state"]
            if state not in ("play", "pause", "stop"):
                raise ValueError(f"state {state!r}")
            song, elapsed, volume = data["song"], data["elapsed"], data["volume"]
            return cls(
                state=state,
                queue=tuple(str(file) for file in data["queue"]),
                song=None if song is None else int(song),
                elapsed=None if elapsed is None else float(elapsed),
                volume=None if volume is None else int(volume),
                random=bool(data["random"]),
                repeat=bool(data["repeat"]),
                single=str(data["single"]),
                consume=str(data["consume"]),
                crossfade=int(data["crossfade"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an MPD snapshot ({exc}): {data!r:.200}") from exc


async def take_snapshot(player: MpdConnection) -> MpdSnapshot:
    """What the player does now."""
    status = await player.status()
    queue = await player.files()
    state = state_of(status)
    return MpdSnapshot(
        state=state,
        queue=queue,
        song=as_int(status, "song"),
        elapsed=as_float(status, "elapsed") if state != "stop" else None,
        volume=volume_of(status),
        random=status.get("random") == "1",
        repeat=status.get("repeat") == "1",
        single=status.get("single", "0"),
        consume=status.get("consume", "0"),
        crossfade=as_int(status, "xfade") or 0,
    )


async def put_back(player: MpdConnection, fader: Fader, snapshot: MpdSnapshot) -> None:
    """Give the player the snapshot's queue, modes, position and volume again."""
    await player.command("stop")
    await player.command("clear")
    song: int | None = None  # the saved song's position in the queue as put back
    added = 0
    for index, file in enumerate(snapshot.queue):
        try:
            await player.command("add", file)
        except PlayerRefused as exc:
            # A file deleted meanwhile must not block the rest of the restore forever.
            log.warning("%s: could not put %r back in the queue: %s", player.name, file, exc)
            continue
        if index == snapshot.song:
            song = added
        added += 1
    await player.command("random", int(snapshot.random))
    await player.command("repeat", int(snapshot.repeat))
    await player.command("single", snapshot.single)
    await player.command("consume", snapshot.consume)
    await player.set_crossfade(snapshot.crossfade, await player.status())
    if snapshot.volume is not None:
        await fader.setvol(0)  # silent while the position is set
    if song is not None:
        if snapshot.state == "stop":
            # MPD keeps a current song while stopped; only playing can set it.
            await player.command("play", song)
            await player.command("stop")
        else:
            try:
                await player.command("seek", song, snapshot.elapsed or 0.0)
            except PlayerRefused:
                await player.command("play", song)  # a stream cannot seek
            if snapshot.state == "pause":
                await player.command("pause", 1)
    if snapshot.volume is not None:
        await fader.setvol(snapshot.volume)
