"""Light backends: one protocol (`base.LightsBackend`), one module per kind."""
