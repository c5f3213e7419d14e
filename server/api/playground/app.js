// Quorum playground: one question to /v1/creative and /v1/precise side by side, the vote drawn
// from the evidence, and a receipt that can be replayed. Plain JS modules, no dependencies, no
// build step (api.js talks to the server, vote.js draws a vote, this file runs the controls).
//
// Safety: model text only reaches the page as text (the page's Content-Security-Policy enforces
// it: Trusted Types with no policy make every string-to-HTML sink throw). The API key lives in
// the password field, in this page's memory; it is sent as a bearer header and never stored.

import { creativeBody, postEvents, preciseBody, replayBody, serverInfo } from "./api.js";
import { $, show, showProgress, showResult } from "./vote.js";

const page = { running: null, messages: null, result: null };

function integer(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number.parseInt(text, 10);
}

function number(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

function controls() {
  return {
    samples: integer("samples"),
    temperature: number("temperature"),
    minAgreement: number("min-agreement"),
    answerFormat: $("answer-format").value,
    adaptive: $("adaptive").checked,
    stoppingRule: $("stopping-rule").value,
    maxTokens: integer("max-tokens"),
    seed: integer("seed"),
    topLogprobs: integer("top-logprobs"),
  };
}

function key() {
  return $("api-key").value.trim();
}

function failed(column, signal, error) {
  $(`${column}-status`).textContent = signal.aborted ? "Stopped." : "Failed.";
  if (!signal.aborted) {
    $(`${column}-error`).textContent = error.message;
    show(`${column}-error`, true);
  }
}

async function runCreative(messages, signal) {
  const text = $("creative-text");
  text.textContent = "";
  $("creative-meta").textContent = "";
  show("creative-error", false);
  $("creative-status").textContent = "Writing…";
  let finish = null;
  let usage = null;
  const onChunk = (chunk) => {
    for (const choice of chunk.choices || []) {
      if (choice.delta && choice.delta.content) text.append(choice.delta.content);
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  };
  try {
    await postEvents("/v1/creative", creativeBody(messages, controls()), key(), onChunk, signal);
    $("creative-status").textContent = "Done.";
    const parts = [`finish: ${finish || "—"}`];
    if (usage) parts.push(`${usage.completion_tokens} tokens`);
    $("creative-meta").textContent = parts.join(" · ");
  } catch (error) {
    failed("creative", signal, error);
  }
}

// Send a precise request, show its progress and then its vote; the precise.answer, or null.
async function runPrecise(body, signal) {
  show("precise-error", false);
  $("request").textContent = JSON.stringify(body, null, 2);
  show("request-box", true);
  $("precise-status").textContent = "Sending…";
  let result = null;
  const onEvent = (event) => {
    if (event.object === "precise.progress") showProgress(event);
    else if (event.object === "precise.answer") result = event;
  };
  try {
    await postEvents("/v1/precise", body, key(), onEvent, signal);
    if (result === null) throw new Error("the stream ended without an answer");
    showResult(result);
    return result;
  } catch (error) {
    failed("precise", signal, error);
    return null;
  }
}

// Run one action at a time; while it runs, Ask turns into Stop (closing the streams aborts the
// server's engine work).
async function running(task) {
  const controller = new AbortController();
  page.running = controller;
  document.body.classList.add("busy");
  $("ask-button").textContent = "Stop";
  $("replay-button").disabled = true;
  try {
    await task(controller.signal);
  } finally {
    page.running = null;
    document.body.classList.remove("busy");
    $("ask-button").textContent = "Ask";
    $("replay-button").disabled = false;
  }
}

async function ask(event) {
  event.preventDefault();
  if (page.running) {
    page.running.abort();
    return;
  }
  const question = $("question").value.trim();
  if (!question) return;
  const messages = [{ role: "user", content: question }];
  page.messages = messages;
  page.result = null;
  $("replay-status").textContent = "";
  await running(async (signal) => {
    const [, result] = await Promise.all([
      runCreative(messages, signal),
      runPrecise(preciseBody(messages, controls()), signal),
    ]);
    page.result = result;
  });
}

function sameVote(a, b) {
  return a.answer === b.answer && JSON.stringify(a.votes) === JSON.stringify(b.votes);
}

async function replay() {
  if (page.running || !page.result) return;
  const before = page.result;
  $("replay-status").textContent = "Replaying…";
  await running(async (signal) => {
    const after = await runPrecise(replayBody(before.receipt, page.messages), signal);
    if (after === null) {
      $("replay-status").textContent = "Replay failed.";
      return;
    }
    page.result = after;
    $("replay-status").textContent = sameVote(before, after)
      ? "Replayed: the same answer and the same votes."
      : "Replayed: the vote differs from the first run.";
  });
}

async function start() {
  $("ask-form").addEventListener("submit", ask);
  $("replay-button").addEventListener("click", replay);
  try {
    const info = await serverInfo();
    $("model-name").textContent = info.model;
    $("server-status").textContent = info.status;
  } catch (error) {
    $("server-status").textContent = `unreachable (${error.message})`;
  }
}

start();
