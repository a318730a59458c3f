"""MPD (or Mopidy's MPD frontend) as a music backend."""

from __future__ import annotations

from ambiance.devices.music.base import MpdMusicConfig
from ambiance.devices.music.mpd import MpdMusic
from ambiance.devices.registry import Backend, BuildContext, register


def build(config: MpdMusicConfig, context: BuildContext) -> MpdMusic:
    return MpdMusic(config)


register(
    Backend(
        slot="music",
        name="mpd",
        config=MpdMusicConfig,
        build=build,
        summary="MPD or Mopidy: per-stage playlists, stepped fades, the chime, exact restore.",
    )
)
