"""The playground in a real browser: headless Chromium (Debian's) driven by Playwright against
real ``quorum serve`` processes.

- On the tiny model: ask once, see creative and precise side by side; the vote chart, the
  agreement, the samples and their confidence are exactly the API's answer; Replay re-sends the
  receipt and gets the same vote as the same request sent by hand.
- On the scripted engine (it echoes the prompt into every sample): model text with HTML and
  script in it is shown as text and never runs; the API key works from the page's memory and
  is stored nowhere.
- On the embedded model: the screenshot in the README (``QUORUM_PLAYGROUND_SCREENSHOT=PATH``
  also writes it there).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from quorum.client import replay_request
from tests.e2e.playground_page import Playground, assert_shows, launch
from tests.e2e.server_process import ServerProcess
from tests.reliability.conftest import scripted_process

pytestmark = pytest.mark.browser
KEY = "sk-playground-browser-key"
INJECTED = '5 <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> <b>bold</b>'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module's tests (each test opens its own context)."""
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``quorum serve`` on the scripted engine, with an API key; on loopback, so the page is on
    by default."""
    run_dir = tmp_path_factory.mktemp("playground")
    server = scripted_process(
        run_dir, "playground-scripted", [], env={"QUORUM_API_KEYS": f'["{KEY}"]'}
    )
    yield server
    assert server.stop() == 0


def screenshot(playground: Playground, path: Path) -> Path:
    """A full-page screenshot, its path printed (pytest -s shows it)."""
    playground.page.screenshot(path=str(path), full_page=True)
    print(f"\n[playground] screenshot: {path}")
    return path


def by_hand(server: ServerProcess, body: dict[str, Any]) -> dict[str, Any]:
    """The same request the page sent, sent without the page and not streamed."""
    response = httpx.post(
        f"{server.base_url}/v1/precise", json={**body, "stream": False}, timeout=300
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.engine
def test_tiny_model_vote_is_shown_as_the_api_gives_it(
    tiny_server: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    playground = Playground.open(browser, tiny_server.base_url)
    first = playground.ask(
        "Say something.", samples="6", temperature="1.0", max_tokens="4", seed="11"
    )
    assert playground.precise_requests() == [
        {
            "messages": [{"role": "user", "content": "Say something."}],
            "samples": 6,
            "answer_format": "auto",
            "min_agreement": 0,
            "adaptive": False,
            "stopping_rule": "esc",
            "stream": True,
            "temperature": 1.0,
            "max_tokens": 4,
            "seed": 11,
            "top_logprobs": 5,
        }
    ]
    assert first["samples_used"] == 6 and first["receipt"]["sampling"]["seed"] == 11
    assert_shows(playground.vote(), first)
    assert playground.text("#creative-status") == "Done."
    assert playground.text("#creative-text"), "the creative column shows its text"
    screenshot(playground, tmp_path / "playground-tiny.png")

    # Replay re-sends the receipt: the request it sent is the receipt's, mapped back to request
    # fields as quorum.client does it, and its vote is the same request's sent by hand.
    replayed = playground.replay()
    sent = playground.precise_requests()[-1]
    assert sent == {
        "messages": [{"role": "user", "content": "Say something."}],
        **replay_request(first["receipt"]),
        "stream": True,
    }
    assert_shows(playground.vote(), replayed)
    assert replayed["receipt"] == first["receipt"]
    again = by_hand(tiny_server, sent)
    assert (again["answer"], again["votes"]) == (replayed["answer"], replayed["votes"])
    assert [s["text"] for s in again["samples"]] == [s["text"] for s in replayed["samples"]]
    assert playground.console == []


def test_model_text_is_shown_as_text_and_never_runs(
    scripted: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    playground = Playground.open(browser, scripted.base_url)
    playground.page.fill("#api-key", KEY)
    result = playground.ask(
        INJECTED, samples="3", seed="1", answer_format="text", min_agreement="0.5"
    )
    assert result["abstained"], "three different echoes: 1 in 3 agree, under 0.5"
    screenshot(playground, tmp_path / "playground-injection.png")
    page = playground.page
    assert page.evaluate("window.__pwned") is None, "no injected handler or script ran"
    assert page.evaluate("document.querySelectorAll('img, b').length") == 0, "no injected element"
    assert page.evaluate("document.scripts.length") == 1, "only the page's own script"
    shown = playground.vote()
    assert_shows(shown, result)
    assert shown["answer"] == "none" and page.is_visible("#abstained")
    assert all(INJECTED in bar["answer"] for bar in shown["bars"]), "answers: the literal text"
    assert all(INJECTED in row["text"] for row in shown["rows"])
    assert INJECTED in playground.text("#creative-text")
    assert all(bar["label"].startswith("sample ") for bar in shown["bars"])
    assert playground.console == [], "no error, no CSP violation"


def test_the_key_works_from_page_memory_and_is_stored_nowhere(
    scripted: ServerProcess, browser: Browser
) -> None:
    playground = Playground.open(browser, scripted.base_url)
    page = playground.page
    page.fill("#question", "What is 2+3? The answer is 5")
    page.click("#ask-button")
    playground.wait_idle()
    assert playground.text("#precise-error").startswith("HTTP 401: Missing or incorrect API key")
    assert "HTTP 401" in playground.text("#creative-error")

    page.fill("#api-key", KEY)
    result = playground.ask("What is 2+3? The answer is 5", samples="2")
    assert result["answer"] == "5" and playground.vote()["answer"] == "5"
    assert page.is_hidden("#precise-error") and page.is_hidden("#creative-error")
    keyed = [r for r in playground.sent if r["headers"].get("authorization") == f"Bearer {KEY}"]
    assert {r["url"].removeprefix(scripted.base_url) for r in keyed} == {
        "/v1/precise",
        "/v1/creative",
    }
    stored = page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")
    assert stored == [0, 0, ""]
    assert page.context.cookies() == []
    assert KEY not in str(page.context.storage_state())
    # A reload forgets it: the field starts empty again.
    page.reload()
    assert page.input_value("#api-key") == ""
    # The only complaints were the browser's about the two keyless 401s.
    assert len(playground.console) == 2
    assert all("status of 401" in line for line in playground.console), playground.console


@pytest.mark.engine
def test_embedded_model_screenshot(
    smol_server: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    playground = Playground.open(browser, smol_server.base_url)
    result = playground.ask(
        "What is 7 + 8? Reply with just the number.",
        samples="8",
        temperature="0.7",
        max_tokens="24",
        seed="1",
    )
    assert_shows(playground.vote(), result)
    assert playground.text("#creative-text")
    path = screenshot(playground, tmp_path / "playground.png")
    target = os.environ.get("QUORUM_PLAYGROUND_SCREENSHOT")
    if target:
        shutil.copyfile(path, target)
        print(f"[playground] copied to {target}")
    assert playground.console == []
