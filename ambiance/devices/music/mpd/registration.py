"""MPD (or Mopidy's MPD frontend) as the registry's music backend `mpd`."""

from __future__ import annotations

from ambiance.devices.music.mpd.backend import MpdMusic
from ambiance.devices.music.mpd.config import MpdMusicConfig
from ambiance.devices.registry import Backend, BuildContext, register


def build(config: MpdMusicConfig, context: BuildContext) -> MpdMusic:
    return MpdMusic(config, sleep=context.clock.sleep)


register(
    Backend(
        slot="music",
        name="mpd",
        config=MpdMusicConfig,
        build=build,
    )
)
