"""ambiance: turn a room into a spa for a massage at home."""

__version__ = "0.1.0"
