"""The core is free of the web: importing every module under ambiance/ loads no FastAPI,
Starlette or uvicorn (the HTTP door lives in api/, `serve` is an entry point)."""

from __future__ import annotations

import subprocess
import sys

WEB = ("fastapi", "starlette", "uvicorn")

# Run in a fresh interpreter: this test process has imported the web stack already.
CHECK = f"""
import importlib, pkgutil, sys
import ambiance
names = [m.name for m in pkgutil.walk_packages(ambiance.__path__, "ambiance.")]
for name in names:
    if name != "ambiance.__main__":  # it runs the command line
        importlib.import_module(name)
from ambiance.cli import build_parser
build_parser()  # lists `serve` from its entry point without loading the web stack
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {WEB!r})
print(len(names), loaded)
"""


def test_importing_the_core_loads_no_web_framework() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=True
    )
    count, loaded = done.stdout.split(" ", 1)
    assert int(count) > 40  # every module was walked, not an empty package
    assert loaded.strip() == "[]"
