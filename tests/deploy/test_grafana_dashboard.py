"""The Grafana dashboard (deploy/grafana/quorum.json) asks only for what Quorum exports.

Every query is parsed as PromQL (Grafana's variables replaced by sample values) and each metric
it names must be a series a real scrape holds, taken from the app after requests of every kind
(plain, creative, precise, an abstention, a 404, a 429, a client that hangs up), so that the
labelled series exist. Label names the queries group or filter by must be the series' own (or
``le`` and the ``instance`` Prometheus adds).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import ROOT
from tests.inprocess import MODEL, serving
from tests.reliability.conftest import CHAT, MESSAGES, AsgiCall, make_settings, paced, until

DASHBOARD = ROOT / "deploy" / "grafana" / "quorum.json"
# Grafana's variables, replaced by values of the same kind so the query parses as PromQL.
VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$instance": ".*",
}
SCRAPE_LABELS = {"instance", "job"}  # added by Prometheus when it scrapes


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable."""
    found = [
        (f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"variable {variable['name']}", variable["query"]["query"]))
    return found


def as_promql(query: str) -> str:
    """The query with Grafana's variables replaced, and ``label_values(m, l)`` as ``m``."""
    for name, value in sorted(VARIABLES.items(), key=lambda item: -len(item[0])):
        query = query.replace(name, value)
    label_values = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
    if label_values:
        return f'{label_values.group(1)}{{{label_values.group(2)}!=""}}'
    return query


def grouping_labels(nodes: list[Any]) -> list[str]:
    """Labels named by ``by``/``without`` on aggregations and ``on``/``ignoring``/``group_*``
    on binary operators."""
    names: list[str] = []
    for node in nodes:
        modifier = getattr(node, "modifier", None)
        if isinstance(node, promql_parser.AggregateExpr) and modifier is not None:
            names += modifier.labels
        if isinstance(node, promql_parser.BinaryExpr) and modifier is not None:
            if modifier.matching is not None:
                names += modifier.matching.labels
            names += modifier.group_labels or []
    return names


def problems(query: str, exported: dict[str, set[str]]) -> tuple[set[str], list[str]]:
    """The metric names a query uses, and what is wrong with it against a scrape: names not
    exported, label names its series do not carry (in matchers and in ``by``/``on``)."""
    nodes: list[Any] = []
    promql_parser.walk(promql_parser.parse(as_promql(query)), nodes.append)
    selectors = [n for n in nodes if isinstance(n, promql_parser.VectorSelector)]
    found = [] if selectors else ["no metric"]
    labels = set(SCRAPE_LABELS)
    for selector in selectors:
        if selector.name not in exported:
            found.append(f"{selector.name} is not exported")
            continue
        own = exported[selector.name]
        labels |= own
        found += [
            f"{selector.name} has no label {m.name}"
            for m in selector.matchers.matchers
            if m.name not in own | SCRAPE_LABELS
        ]
    for name in grouping_labels(nodes):
        if name not in labels:
            found.append(f"no series has label {name}")
    return {s.name for s in selectors}, found


@pytest.fixture(scope="module")
async def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Series name -> label names, from a scrape after requests of every kind."""
    return await _scrape(tmp_path_factory.mktemp("cache"))


async def _scrape(cache: Path) -> dict[str, set[str]]:
    engine = paced(token_delay_s=0.01)
    settings = make_settings(cache, max_inflight_samples=4)
    async with serving(settings, engine) as (app, http, client):
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)
        await client.chat.completions.create(model=f"{MODEL}:creative", messages=MESSAGES)
        await http.post("/v1/creative", json={"messages": MESSAGES})
        await http.post("/v1/precise", json={"messages": MESSAGES, "samples": 2})
        abstain = {"samples": 2, "answer_format": "text", "min_agreement": 1.0}
        answer = await http.post("/v1/precise", json={"messages": MESSAGES, **abstain})
        assert answer.json()["abstained"] is True
        assert (
            await http.post(CHAT, json={"model": "nope", "messages": MESSAGES})
        ).status_code == 404
        # A request holding one of the four samples: one asking for four more is refused
        # (429), then its client hangs up (an abort).
        call = AsgiCall(app, CHAT, {"model": MODEL, "messages": MESSAGES, "max_tokens": 400})
        await until(lambda: engine.active >= 1)
        busy = await http.post(CHAT, json={"model": MODEL, "messages": MESSAGES, "n": 4})
        assert busy.status_code == 429
        call.hang_up()
        await call.task
        text = (await http.get("/metrics")).text
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def test_the_dashboard_is_importable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    source = {"type": "prometheus", "uid": "${datasource}"}
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(dashboard):
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        for x in range(box["x"], box["x"] + box["w"]):
            for y in range(box["y"], box["y"] + box["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"] == source for target in panel["targets"])


def test_every_query_names_exported_series(exported: dict[str, set[str]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used: set[str] = set()
    for where, query in queries(dashboard):
        names, found = problems(query, exported)
        assert found == [], f"{where}: {query!r}: {found}"
        used |= names
    # Every family the server exports is on the dashboard.
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", name) for name in exported}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in used}
    assert families - shown == set()


@pytest.mark.parametrize(
    "query",
    [
        "sum(rate(quorum_request_total[5m]))",  # the family name without its _total suffix
        "quorum_precise_agreement",  # a histogram has no bare series
        "sum by (path) (rate(quorum_requests_total[5m]))",  # no such label
        'quorum_rejections_total{route="/v1/precise"}',  # rejections are by reason only
        "sum(rate(quorum_requests_total[5m])) / on (path) sum(quorum_ready)",
        "vector(1)",
    ],
)
def test_the_check_catches_wrong_queries(exported: dict[str, set[str]], query: str) -> None:
    assert problems(query, exported)[1] != []
