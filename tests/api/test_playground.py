"""The playground page as the server ships it: a strict CSP, on only where it should be, public
files but keyed API calls, and every file packaged. The page's behaviour in a browser is tested
in tests/e2e/test_playground_browser.py."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import httpx
import pytest

from server.api.middleware.common import PLAYGROUND_PATHS, PUBLIC_PATHS
from server.api.routes.playground import ASSETS, read_asset
from server.engines.scripted import ScriptedEngine
from server.runtime.settings import Settings
from tests.inprocess import make_settings, serving

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-playground-test-key"
QUESTION = {"messages": [{"role": "user", "content": "What is 2+3? The answer is 5"}]}


def csp_of(response: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as directive -> sources."""
    policy: dict[str, list[str]] = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        policy[name] = sources
    return policy


@pytest.mark.parametrize("path", sorted(ASSETS))
async def test_every_file_is_served_with_a_strict_policy(tmp_path: Path, path: str) -> None:
    async with serving(make_settings(tmp_path, playground=True), ScriptedEngine()) as running:
        response = await running.http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == ASSETS[path][1]
    assert response.content == read_asset(ASSETS[path][0])
    policy = csp_of(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"], "no inline script, no eval"
    assert policy["connect-src"] == ["'self'"], "the page talks to this server only"
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["require-trusted-types-for"] == ["'script'"], "no string-to-HTML sinks"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in response.headers, "the page does not widen CORS"


async def test_no_playground_serves_no_page(tmp_path: Path) -> None:
    async with serving(make_settings(tmp_path, playground=False), ScriptedEngine()) as running:
        for path in ASSETS:
            response = await running.http.get(path)
            assert response.status_code == 404, path
            assert "content-security-policy" not in response.headers
        # The rest of the server is unaffected.
        assert (await running.http.post("/v1/precise", json=QUESTION)).status_code == 200


async def test_the_page_is_public_and_its_api_calls_need_the_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, playground=True, api_keys=[KEY])
    async with serving(settings, ScriptedEngine()) as running:
        http = running.http
        for path in ASSETS:
            assert (await http.get(path)).status_code == 200, path
        assert (await http.post("/v1/precise", json=QUESTION)).status_code == 401
        assert (await http.post("/v1/creative", json=QUESTION)).status_code == 401
        bearer = {"authorization": f"Bearer {KEY}"}
        assert (await http.post("/v1/precise", json=QUESTION, headers=bearer)).status_code == 200
        # Only the page's exact paths are open: deny by default stays.
        for path in ("/playground/", "/playground/other.js", "/playground/app.js/x"):
            assert (await http.get(path)).status_code == 401, path


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("quorum.example", False),
        ("localhost.example", False),
        ("", False),
    ],
)
def test_default_is_on_only_for_loopback_hosts(tmp_path: Path, host: str, expected: bool) -> None:
    assert make_settings(tmp_path, host=host).playground is expected


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, True),
        (["--no-playground"], {}, False),
        (["--host", "0.0.0.0"], {}, False),
        (["--host", "0.0.0.0", "--playground"], {}, True),
        ([], {"QUORUM_PLAYGROUND": "false"}, False),
        ([], {"QUORUM_HOST": "0.0.0.0"}, False),
        ([], {"QUORUM_HOST": "0.0.0.0", "QUORUM_PLAYGROUND": "true"}, True),
        (["--playground"], {"QUORUM_PLAYGROUND": "false"}, True),
    ],
)
def test_flags_and_environment_switch_it(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], expected: bool
) -> None:
    for name in ("QUORUM_HOST", "QUORUM_PLAYGROUND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings(_cli_parse_args=args).playground is expected


def test_every_file_is_declared_and_packaged() -> None:
    folder = ROOT / "server" / "api" / "playground"
    shipped = {path.name for path in folder.iterdir() if path.is_file()}
    assert {name for name, _ in ASSETS.values()} == shipped, "every file served, none unserved"
    assert set(ASSETS) == PLAYGROUND_PATHS <= PUBLIC_PATHS, "the auth layer knows the same paths"
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["server.api"]
    for name in shipped:
        assert any(fnmatch.fnmatch(f"playground/{name}", g) for g in globs), f"{name} unpackaged"


# What the page must never do with model text or the key (the CSP and the browser tests enforce
# the first at run time; this names the rule where a reviewer reads the code).
FORBIDDEN_JS = [
    r"\binnerHTML\b",
    r"\bouterHTML\b",
    r"insertAdjacentHTML",
    r"document\.write",
    r"\beval\s*\(",
    r"new\s+Function",
    r"localStorage",
    r"sessionStorage",
    r"document\.cookie",
    r"https?://(?!www\.w3\.org/2000/svg)",
]


def test_the_page_has_no_inline_code_and_no_storage() -> None:
    html = read_asset("index.html").decode()
    script = "\n".join(read_asset(name).decode() for name in ("app.js", "api.js", "vote.js"))
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script type="module" src="/playground/app.js">'
    ]
    assert not re.search(r"\son[a-z]+\s*=", html), "no inline event handlers"
    assert not re.search(r"\sstyle\s*=", html), "no inline styles"
    assert not re.search(r"https?://", html), "no external requests"
    for pattern in FORBIDDEN_JS:
        assert not re.search(pattern, script), pattern
