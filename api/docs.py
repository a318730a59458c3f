"""The API's docs pages, /docs (Swagger UI) and /redoc (ReDoc), served from this server alone.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (blank with no internet) and
start Swagger UI with an inline script. Here the built files come from the
fastapi-offline package (package data, nothing vendored in this repo) and the start-up
script from docs_static/, all under /docs/assets/, so that both pages work offline and
their Content-Security-Policy (api/auth.py) allows scripts from 'self' alone.
create_app turns FastAPI's pages off (`docs_url=None, redoc_url=None`) and calls
`install`. Like /openapi.json, the pages are open: they describe the API and hold no data.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS = "/docs"
REDOC = "/redoc"
ASSETS = "/docs/assets"
ICON = "/icons/icon-192.png"  # the phone app's icon (api/app.py serves /icons)


def _page(title: str, head: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" type="image/png" href="{ICON}">
{head}
</head>
<body>
{body}
</body>
</html>
"""


def swagger_ui_page(title: str, openapi_url: str) -> str:
    """Swagger UI's page: its files, and the start-up script told where the schema is."""
    return _page(
        f"{title} - Swagger UI",
        f'<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">',
        f'<div id="swagger-ui"></div>\n<script src="{ASSETS}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{ASSETS}/swagger-init.js" data-openapi-url="{escape(openapi_url)}">'
        "</script>",
    )


def redoc_page(title: str, openapi_url: str) -> str:
    """ReDoc's page: the standalone bundle renders the <redoc> element by itself."""
    return _page(
        f"{title} - ReDoc",
        f'<link rel="stylesheet" href="{ASSETS}/redoc.css">',
        "<noscript>ReDoc needs JavaScript to show the API's documentation.</noscript>\n"
        f'<redoc spec-url="{escape(openapi_url)}"></redoc>\n'
        f'<script src="{ASSETS}/redoc.standalone.js"></script>',
    )


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their files (the app's FastAPI pages must be off)."""
    openapi_url = app.openapi_url or "/openapi.json"
    swagger = swagger_ui_page(app.title, openapi_url)
    redoc = redoc_page(app.title, openapi_url)

    @app.get(DOCS, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(swagger)

    @app.get(REDOC, include_in_schema=False)
    async def redoc_html() -> HTMLResponse:
        return HTMLResponse(redoc)

    # Ours first (the start-up script, ReDoc's page style), then the library's built files.
    files = StaticFiles(packages=[("api", "docs_static"), ("fastapi_offline", "static")])
    app.mount(ASSETS, files, name="docs-assets")
