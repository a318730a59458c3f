"""Music through MPD, or Mopidy's MPD frontend, with python-mpd2's asyncio client.

backend.py: `MpdMusic`, the room's music backend; client.py: the connection, python-mpd2's
and the OS's errors as ours (`PlayerRefused`, `DeviceUnavailable`), reading MPD's answers;
fades.py: stepped fades; cue.py: the stage chime; snapshot.py: `MpdSnapshot`, taken before
a session and put back after it; config.py: `MpdMusicConfig`; registration.py: the
registry's declaration of the `mpd` music backend.
"""

from ambiance.devices.music.mpd.backend import RESTORE_FADE_MAX, MpdMusic
from ambiance.devices.music.mpd.client import AsyncMpdClient, MpdConnection, PlayerRefused
from ambiance.devices.music.mpd.config import MpdMusicConfig
from ambiance.devices.music.mpd.cue import DUCK_FADE, DUCK_VOLUME, IDLE_POLL
from ambiance.devices.music.mpd.fades import Sleep
from ambiance.devices.music.mpd.snapshot import MpdSnapshot

__all__ = [
    "DUCK_FADE",
    "DUCK_VOLUME",
    "IDLE_POLL",
    "RESTORE_FADE_MAX",
    "AsyncMpdClient",
    "MpdConnection",
    "MpdMusic",
    "MpdMusicConfig",
    "MpdSnapshot",
    "PlayerRefused",
    "Sleep",
]
