"""Music backends: one protocol (`base.MusicBackend`), one module per kind."""
