"""Drive the playground page in headless Chromium (Debian's, through Playwright) and read back
what it shows, so tests compare the page with the API's own answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root, on a machine with no network but loopback: no sandbox, no GPU, and none of
# Chromium's own background connections (refused here, and slow to fail).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 300_000  # a precise vote on the CPU engine, on a machine shared with other jobs

# Everything the page shows about a vote, read from the DOM (visible text, and the exact values
# the page keeps beside it in data- attributes).
READ_VOTE = """() => {
  const $ = (id) => document.getElementById(id);
  return {
    answer: $("answer").textContent,
    abstained: !$("abstained").hidden,
    agreement: Number($("agreement").dataset.value),
    agreement_text: $("agreement").textContent,
    samples_used: Number($("samples-used").dataset.value),
    samples_used_text: $("samples-used").textContent,
    unparsed: Number($("unparsed").textContent),
    reasons: [...$("reasons").children].map((li) => li.textContent),
    bars: [...document.querySelectorAll("#chart g.bar")].map((g) => ({
      kind: g.dataset.kind,
      answer: g.dataset.answer,
      count: Number(g.dataset.count),
      count_text: g.querySelector(".bar-count").textContent,
      label: g.querySelector(".bar-label").textContent,
    })),
    rows: [...document.querySelectorAll("#samples-body tr")].map((tr) => ({
      index: Number(tr.cells[0].textContent),
      answer: tr.cells[1].textContent,
      voted: tr.cells[2].textContent,
      mean_logprob: tr.cells[3].textContent,
      confidence: tr.cells[4].textContent,
      text: tr.querySelector("td details p").textContent,
    })),
  };
}"""


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless (Playwright downloads no browser of its own here)."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: scripts/setup.sh --browser installs Debian's chromium "
            "(or deselect these tests with -m 'not browser')"
        )
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@dataclass
class Playground:
    """One tab on a server's /playground, recording what the page logged and sent."""

    page: Page
    base_url: str
    console: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, browser: Browser, base_url: str) -> Playground:
        """A fresh context (no shared storage) on the page, its console errors recorded."""
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        playground = cls(page, base_url)
        page.on("console", playground._on_console)
        page.on("pageerror", lambda error: playground.console.append(f"pageerror: {error}"))
        page.on("request", playground._on_request)
        page.goto(f"{base_url}/playground")
        expect(page.locator("#server-status")).to_have_text("ready", timeout=TIMEOUT_MS)
        return playground

    def _on_console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    def _on_request(self, request: Any) -> None:
        if request.method == "POST":
            self.sent.append(
                {
                    "url": request.url,
                    "headers": request.headers,
                    "body": json.loads(request.post_data or "{}"),
                }
            )

    def ask(self, question: str, **controls: str | bool) -> dict[str, Any]:
        """Fill the form (control ids with '-', e.g. answer_format='text'), press Ask, wait
        until both columns are done; the ``precise.answer`` the page received."""
        page = self.page
        page.fill("#question", question)
        for name, value in controls.items():
            selector = "#" + name.replace("_", "-")
            if isinstance(value, bool):
                page.set_checked(selector, value)
            elif page.eval_on_selector(selector, "e => e.tagName") == "SELECT":
                page.select_option(selector, value)
            else:
                page.fill(selector, value)
        return self._precise_after(lambda: page.click("#ask-button"))

    def replay(self) -> dict[str, Any]:
        """Press Replay; the ``precise.answer`` the page received for the replayed request."""
        return self._precise_after(lambda: self.page.click("#replay-button"))

    def _precise_after(self, action: Callable[[], None]) -> dict[str, Any]:
        """Do ``action``, wait for the page to finish, and read the /v1/precise event stream
        it received (the same bytes the page drew from)."""
        with self.page.expect_response(lambda r: r.url.endswith("/v1/precise")) as caught:
            action()
        self.wait_idle()
        events = [
            json.loads(line[len("data: ") :])
            for line in caught.value.text().split("\n")
            if line.startswith("data: {")
        ]
        return final_answer(events)

    def wait_idle(self) -> None:
        """Wait until no request of the page is running (the Ask button says Ask again). Not
        ``wait_for_function``: it evaluates strings, which the page's CSP rightly refuses."""
        expect(self.page.locator("#ask-button")).to_have_text("Ask", timeout=TIMEOUT_MS)

    def vote(self) -> dict[str, Any]:
        """What the page shows about the last vote."""
        shown: dict[str, Any] = self.page.evaluate(READ_VOTE)
        return shown

    def text(self, selector: str) -> str:
        """The text content of one element."""
        return self.page.text_content(selector) or ""

    def precise_requests(self) -> list[dict[str, Any]]:
        """The bodies the page POSTed to /v1/precise, in order."""
        return [r["body"] for r in self.sent if r["url"].endswith("/v1/precise")]


# How the samples table says whether a sample's answer counted, by (voted, has an answer).
BALLOTS = {
    (True, True): "yes",
    (True, False): "no: no answer",
    (False, True): "no: cut off",
    (False, False): "no: cut off",
}


def expected_vote(result: dict[str, Any]) -> dict[str, Any]:
    """What the page should show for an API answer (``precise.answer``)."""
    winner = result["answer"]
    bars = [
        {
            "kind": "win" if v["answer"] == winner else "vote",
            "answer": v["answer"],
            "count": v["count"],
        }
        for v in result["votes"]
    ]
    if result["unparsed"]:
        bars.append({"kind": "unparsed", "answer": "", "count": result["unparsed"]})
    rows = [
        {
            "index": s["index"],
            "answer": "—" if s["answer"] is None else s["answer"],
            "voted": BALLOTS[(s["voted"], s["answer"] is not None)],
        }
        for s in result["samples"]
    ]
    return {
        "answer": "none" if winner is None else winner,
        "abstained": result["abstained"],
        "agreement": result["agreement"],
        "samples_used": result["samples_used"],
        "unparsed": result["unparsed"],
        "bars": bars,
        "rows": rows,
    }


def assert_shows(shown: dict[str, Any], result: dict[str, Any]) -> None:
    """The page shows exactly the API's vote: answer, agreement, counts, bars and samples."""
    expected = expected_vote(result)
    for key in ("answer", "abstained", "agreement", "samples_used", "unparsed"):
        assert shown[key] == expected[key], (key, shown[key], expected[key])
    bars = [{k: bar[k] for k in ("kind", "answer", "count")} for bar in shown["bars"]]
    assert bars == expected["bars"]
    voted = sum(v["count"] for v in result["votes"])
    for bar in shown["bars"]:
        assert bar["count_text"].split(" ")[0] == str(bar["count"]), bar
        if bar["kind"] != "unparsed":
            share = float(bar["count_text"].split("(")[1].rstrip("%)"))
            assert abs(share - 100 * bar["count"] / voted) < 0.051, bar
    if voted:
        agreement_shown = float(shown["agreement_text"].split("%")[0])
        assert abs(agreement_shown - 100 * result["agreement"]) < 0.051
        assert shown["agreement_text"].endswith(f"of {voted} votes")
    else:
        assert shown["agreement_text"] == "no votes"
    if result["abstained"]:
        assert f"Abstained: {result['abstain_reason']}." in shown["reasons"]
    if result["budget_exhausted"]:
        assert any(result["budget_reason"] in line for line in shown["reasons"])
    rows = [{k: row[k] for k in ("index", "answer", "voted")} for row in shown["rows"]]
    assert rows == expected["rows"]
    for row, sample in zip(shown["rows"], result["samples"], strict=True):
        assert row["text"] == sample["text"], "each sample's text, verbatim"
        if sample["mean_logprob"] is not None:
            assert abs(float(row["mean_logprob"]) - sample["mean_logprob"]) <= 0.00051
        if sample["confidence"] is not None:
            assert row["confidence"].startswith(f"{sample['confidence']['mean']:.2f} · ")


def final_answer(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``precise.answer`` at the end of a precise event stream."""
    assert events and events[-1]["object"] == "precise.answer", events[-1:]
    return events[-1]
