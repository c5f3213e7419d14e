// Talking to Quorum: streamed POSTs read as server-sent events, and the request bodies the page
// sends (from the form, or from a receipt to replay it). No DOM here.

// The receipt names the stopping rule by its class; the request by its short name.
const STOPPING_RULES = { BetaStopping: "beta", WindowStopping: "esc" };

function headers(key) {
  const result = { "content-type": "application/json" };
  if (key) result.authorization = `Bearer ${key}`;
  return result;
}

async function failure(response) {
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message += `: ${body.error.message}`;
  } catch (_) {
    // not JSON: the status says enough
  }
  if (response.status === 401) message += " (type the server's API key above)";
  return new Error(message);
}

// The JSON payloads of complete events in `buffer`, and what is left of it.
function splitEvents(buffer, done) {
  const raw = buffer.split(/\r?\n\r?\n/);
  const rest = done ? "" : raw.pop();
  const payloads = raw
    .map((event) =>
      event
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n"),
    )
    .filter((data) => data !== "");
  return [payloads, rest];
}

// POST a streamed request with the key (if any) as a bearer header, and call onEvent with each
// JSON event until [DONE]. An error event or an error status throws its OpenAI message.
export async function postEvents(path, body, key, onEvent, signal) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers(key),
    body: JSON.stringify(body),
    signal,
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    const [payloads, rest] = splitEvents(buffer, done);
    buffer = rest;
    for (const data of payloads) {
      if (data === "[DONE]") return;
      const payload = JSON.parse(data);
      if (payload.error) throw new Error(payload.error.message || "the server reported an error");
      onEvent(payload);
    }
    if (done) return;
  }
}

// What /ready says: the served model's name and whether it serves (public, no key).
export async function serverInfo() {
  const response = await fetch("/ready", { credentials: "omit", cache: "no-store" });
  const body = await response.json();
  return { model: body.model || "unknown", status: body.status || `HTTP ${response.status}` };
}

// The /v1/precise body for the form's controls (null: leave the field to the server).
export function preciseBody(messages, controls) {
  const body = {
    messages,
    samples: controls.samples ?? 1,
    answer_format: controls.answerFormat,
    min_agreement: controls.minAgreement ?? 0,
    adaptive: controls.adaptive,
    stopping_rule: controls.stoppingRule,
    stream: true,
  };
  if (controls.temperature !== null) body.temperature = controls.temperature;
  if (controls.maxTokens !== null) body.max_tokens = controls.maxTokens;
  if (controls.seed !== null) body.seed = controls.seed;
  if (controls.topLogprobs) body.top_logprobs = controls.topLogprobs;
  return body;
}

// The /v1/creative body: creative defaults for sampling, the same length and seed.
export function creativeBody(messages, controls) {
  const body = { messages, stream: true, stream_options: { include_usage: true } };
  if (controls.maxTokens !== null) body.max_tokens = controls.maxTokens;
  if (controls.seed !== null) body.seed = controls.seed;
  return body;
}

// The request that replays a receipt: its sampling and plan fields, mapped back to request
// fields (quorum.client.replay_request does the same in Python).
export function replayBody(receipt, messages) {
  const sampling = receipt.sampling;
  const plan = receipt.plan;
  const confidence = plan.confidence || {};
  const body = {
    messages,
    samples: plan.samples,
    seed: sampling.seed,
    temperature: sampling.temperature,
    top_p: sampling.top_p,
    max_tokens: sampling.max_tokens,
    presence_penalty: sampling.presence_penalty,
    frequency_penalty: sampling.frequency_penalty,
    answer_format: plan.answer_format,
    min_agreement: plan.min_agreement,
    adaptive: plan.adaptive,
    stream: true,
  };
  if (sampling.stop && sampling.stop.length) body.stop = sampling.stop;
  if (plan.max_total_tokens !== null && plan.max_total_tokens !== undefined) {
    body.max_total_tokens = plan.max_total_tokens;
  }
  if (plan.deadline_ms !== null && plan.deadline_ms !== undefined) {
    body.deadline_ms = Math.ceil(plan.deadline_ms);
  }
  const rule = plan.stopping_rule && STOPPING_RULES[plan.stopping_rule.name];
  if (rule) body.stopping_rule = rule;
  if (confidence.top_k) body.top_logprobs = confidence.top_k;
  if (confidence.window) body.confidence_window = confidence.window;
  if (confidence.tail) body.confidence_tail = confidence.tail;
  if (confidence.keep_tokens) body.token_confidences = true;
  return body;
}
