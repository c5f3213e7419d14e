// Drawing a precise vote: the answer and its reasons, a bar chart of the votes (inline SVG),
// and a row per sample. Model text is untrusted: it reaches the page only through textContent,
// setAttribute or SVG text nodes, never as HTML.

const SVG = "http://www.w3.org/2000/svg";
const LABEL_CHARS = 28;

export const $ = (id) => document.getElementById(id);

export function show(id, visible) {
  $(id).hidden = !visible;
}

export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function svgElement(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    node.setAttribute(name, String(value));
  }
  return node;
}

function shorten(text, limit) {
  const chars = Array.from(text);
  return chars.length > limit ? chars.slice(0, limit - 1).join("") + "…" : text;
}

function fixed(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "—";
}

function percent(share) {
  return `${(share * 100).toFixed(share === 0 || share === 1 ? 0 : 1)}%`;
}

// One bar: the answer's label, the bar, and its count with its share of the votes.
function bar(row, y, geometry, voted) {
  const { labelWidth, barSpace, rowHeight, most } = geometry;
  const group = svgElement("g", {
    class: `bar ${row.kind}`,
    "data-answer": row.kind === "unparsed" ? "" : row.answer,
    "data-count": row.count,
    "data-kind": row.kind,
  });
  const title = svgElement("title");
  title.textContent = `${row.answer}: ${row.count}`;
  const label = svgElement("text", {
    x: labelWidth - 8,
    y: y + rowHeight / 2 + 4,
    "text-anchor": "end",
    class: "bar-label",
  });
  label.textContent = shorten(row.answer, LABEL_CHARS);
  const width = Math.max(2, (row.count / most) * barSpace);
  const rect = svgElement("rect", {
    x: labelWidth,
    y: y + 4,
    width: width.toFixed(1),
    height: rowHeight - 8,
    rx: 3,
  });
  const share = row.kind === "unparsed" || voted === 0 ? "" : ` (${percent(row.count / voted)})`;
  const count = svgElement("text", {
    x: labelWidth + width + 6,
    y: y + rowHeight / 2 + 4,
    class: "bar-count",
  });
  count.textContent = `${row.count}${share}`;
  group.append(title, rect, label, count);
  return group;
}

// A horizontal bar per answer (in the server's order, the winner first), and one for the
// samples with no extractable answer, which do not vote.
export function drawChart(votes, unparsed, winner) {
  const chart = $("chart");
  chart.replaceChildren();
  const rows = votes.map((vote) => ({ ...vote, kind: vote.answer === winner ? "win" : "vote" }));
  if (unparsed > 0) rows.push({ answer: "no answer", count: unparsed, kind: "unparsed" });
  const voted = votes.reduce((sum, vote) => sum + vote.count, 0);
  if (rows.length === 0) {
    $("chart-caption").textContent = "No votes yet.";
    return;
  }
  const geometry = {
    labelWidth: 220,
    barSpace: 300,
    rowHeight: 30,
    most: Math.max(...rows.map((row) => row.count)),
  };
  const width = geometry.labelWidth + geometry.barSpace + 110;
  const height = rows.length * geometry.rowHeight + 8;
  const root = svgElement("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width: "100%",
    role: "img",
    "aria-label": "votes per answer",
    class: "bars",
  });
  rows.forEach((row, i) => root.append(bar(row, 4 + i * geometry.rowHeight, geometry, voted)));
  chart.append(root);
  const answers = votes.length === 1 ? "1 answer" : `${votes.length} answers`;
  const none = `${unparsed} with no extractable answer (not voting)`;
  const caption = voted === 0 ? `No votes: ${none}` : `${voted} votes over ${answers}`;
  const tail = voted > 0 && unparsed > 0 ? `; ${none}` : "";
  $("chart-caption").textContent = `${caption}${tail}.`;
}

// A progress event: the running tally after an engine round, drawn as it stands.
export function showProgress(event) {
  if (event.stage === "sampling") {
    $("precise-status").textContent = `Sampling ${event.samples} …`;
    return;
  }
  $("precise-status").textContent =
    `Round ${event.round}: ${event.samples_drawn} of ${event.samples_cap} samples drawn, voting…`;
  const votes = Object.entries(event.tallies || {})
    .map(([answer, count]) => ({ answer, count, samples: [] }))
    .sort((a, b) => b.count - a.count);
  drawChart(votes, event.unparsed || 0, null);
}

function confidenceText(sample) {
  const c = sample.confidence;
  if (!c) return "—";
  return `${fixed(c.mean, 2)} · ${fixed(c.lowest_group, 2)} · ${fixed(c.tail, 2)}`;
}

// Whether the sample's answer counted: finished samples cast a ballot, but one with no
// extractable answer is not a vote; an aborted one (deadline, budget) casts none.
function ballot(sample) {
  if (!sample.voted) return "no: cut off";
  return sample.answer === null ? "no: no answer" : "yes";
}

function sampleRow(sample, winner) {
  const row = document.createElement("tr");
  row.dataset.index = String(sample.index);
  if (sample.voted && sample.answer === winner && winner !== null) row.className = "winner";
  const text = document.createElement("td");
  const details = document.createElement("details");
  details.append(element("summary", shorten(sample.text || "(empty)", 48)));
  details.append(element("p", sample.text, "model-text"));
  text.append(details);
  row.append(
    element("td", sample.index),
    element("td", sample.answer === null ? "—" : sample.answer, "answer-cell"),
    element("td", ballot(sample), sample.voted && sample.answer !== null ? "yes" : "no"),
    element("td", fixed(sample.mean_logprob, 3), "num"),
    element("td", confidenceText(sample), "conf"),
    element("td", sample.finish_reason || "—"),
    element("td", sample.seed === null ? "—" : sample.seed, "num"),
    text,
  );
  return row;
}

// Why the vote is what it is: abstention, an exhausted budget, an early stop.
function reasons(result) {
  const list = [];
  if (result.abstained) list.push(`Abstained: ${result.abstain_reason || "no reason given"}.`);
  if (result.budget_exhausted) {
    list.push(`Budget ran out (${result.budget_reason}): the vote ran on the samples that finished.`);
  }
  if (result.stopped_early) {
    list.push(`Stopped early after ${result.samples_used} samples: the vote was settled.`);
  }
  return list;
}

// The whole precise.answer: verdict, numbers, reasons, chart, samples and receipt.
export function showResult(result) {
  const winner = result.answer;
  const answer = $("answer");
  answer.textContent = winner === null ? "none" : winner;
  answer.classList.toggle("long", winner !== null && winner.length > 24);
  show("abstained", result.abstained);
  const votes = result.votes.reduce((sum, vote) => sum + vote.count, 0);
  const agreement = $("agreement");
  agreement.dataset.value = String(result.agreement);
  agreement.textContent = votes ? `${percent(result.agreement)} of ${votes} votes` : "no votes";
  const used = $("samples-used");
  used.dataset.value = String(result.samples_used);
  used.textContent = `${result.samples_used} of ${result.receipt.plan.samples}`;
  $("unparsed").textContent = String(result.unparsed);
  $("tokens").textContent = result.usage
    ? `${result.usage.prompt_tokens} prompt + ${result.usage.completion_tokens} completion`
    : "—";
  $("reasons").replaceChildren(...reasons(result).map((line) => element("li", line)));
  $("winning-text").textContent = result.text || "";
  show("winning-text-box", Boolean(result.text));
  drawChart(result.votes, result.unparsed, winner);
  $("samples-body").replaceChildren(...result.samples.map((s) => sampleRow(s, winner)));
  $("receipt").textContent = JSON.stringify(result.receipt, null, 2);
  show("precise-result", true);
  show("samples-box", true);
  show("receipt-box", true);
  $("precise-status").textContent = result.abstained ? "Abstained." : "Decided.";
}
