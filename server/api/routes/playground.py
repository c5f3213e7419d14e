"""``GET /playground``: a page that shows the vote, shipped as static files in the package.

The page (``server/api/playground/``: plain HTML, JS modules and CSS, no build step, no
third-party code) asks one question of ``/v1/creative`` and ``/v1/precise`` side by side and
draws the evidence. It is served only when ``Settings.playground`` is on (by default: on a
loopback host). The files are public (they hold no secret; ``PLAYGROUND_PATHS``); the API calls
the page makes carry the key the person types, kept in page memory only. Every response carries
a strict Content-Security-Policy: scripts and styles from this origin only, no inline script, no
eval, no string-to-HTML sinks (Trusted Types), no framing, requests to this origin only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

# Path -> (file in server/api/playground, media type); the auth layer's PLAYGROUND_PATHS
# (server.api.middleware.common) names the same paths.
ASSETS = {
    "/playground": ("index.html", "text/html; charset=utf-8"),
    "/playground/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/playground/api.js": ("api.js", "text/javascript; charset=utf-8"),
    "/playground/vote.js": ("vote.js", "text/javascript; charset=utf-8"),
    "/playground/style.css": ("style.css", "text/css; charset=utf-8"),
}
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def read_asset(name: str) -> bytes:
    """One of the page's files, from the installed package (so wheels and images carry it)."""
    return resources.files("server.api").joinpath("playground", name).read_bytes()


def build_router() -> APIRouter:
    """The page's routes, its files read once now: a missing file fails the start, not a click."""
    router = APIRouter(tags=["playground"], include_in_schema=False)
    for path, (name, media_type) in ASSETS.items():
        endpoint = _endpoint(read_asset(name), media_type)
        router.add_api_route(path, endpoint, methods=["GET"], name=f"playground:{name}")
    return router


def _endpoint(content: bytes, media_type: str) -> Callable[[], Awaitable[Response]]:
    async def asset() -> Response:
        return Response(content, media_type=media_type, headers=SECURITY_HEADERS)

    return asset
