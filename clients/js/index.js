// @ts-check
/**
 * A typed client for `gcdial serve`.
 *
 * The types in `schema.d.ts` are generated from the service's OpenAPI document by
 * openapi-typescript (`make js-client`); the calls are made by openapi-fetch, so every path,
 * parameter, body and answer is checked by TypeScript (or by `// @ts-check` in plain JS).
 * Besides the client: an SSE reader that resumes with `Last-Event-ID`, and the webhook
 * signature check (Standard Webhooks: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import createClient from "openapi-fetch";

/** @typedef {import("./schema.js").paths} paths */
/** @typedef {import("./schema.js").components["schemas"]} schemas */
/** @typedef {import("openapi-fetch").Client<paths>} GcdialClient */

/**
 * A client for one service and one API key (`Authorization: Bearer <key>` on every request).
 *
 * @param {{ baseUrl: string, apiKey: string, fetch?: typeof globalThis.fetch }} options
 * @returns {GcdialClient}
 */
export function createGcdialClient({ baseUrl, apiKey, fetch }) {
  const client = /** @type {typeof createClient<paths>} */ (createClient)({
    baseUrl: baseUrl.replace(/\/+$/, ""),
    ...(fetch ? { fetch } : {}),
  });
  client.use({
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${apiKey}`);
      return request;
    },
  });
  return client;
}

/**
 * How long a `Retry-After` header says to wait, in milliseconds (`fallbackMs` when absent).
 *
 * @param {Response} response
 * @param {number} fallbackMs
 */
export function retryAfterMs(response, fallbackMs = 1000) {
  const value = response.headers.get("Retry-After");
  if (value === null) return fallbackMs;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const when = Date.parse(value);
  return Number.isNaN(when) ? fallbackMs : Math.max(0, when - Date.now());
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @typedef {object} PlaceResult
 * @property {number} status the final HTTP status (202, or the 4xx that refused the call)
 * @property {schemas["CallResource"] | undefined} call the call (a refusal carries one too)
 * @property {schemas["ErrorDetail"] | undefined} error what refused it
 * @property {boolean} replayed the answer is the replay of an earlier try with the same key
 * @property {number} tries how many requests it took
 */

/**
 * `POST /v1/calls` with an Idempotency-Key, retried with the same key and body until the service
 * answers for good: a 409 `idempotency_key_in_progress` (the first try is still placing) is
 * waited out as its `Retry-After` says; a 429 likewise; a timeout, a dropped connection or a 5xx
 * is retried after a pause. A retry never rings the customer twice: the service answers every try
 * of one key with the first call.
 *
 * @param {GcdialClient} client
 * @param {schemas["CallRequest"]} body
 * @param {{ idempotencyKey: string, timeoutMs?: number, maxTries?: number,
 *           onRetry?: (why: string, waitMs: number) => void }} options
 * @returns {Promise<PlaceResult>}
 */
export async function placeCall(client, body, options) {
  const { idempotencyKey, timeoutMs = 30_000, maxTries = 20, onRetry = () => {} } = options;
  for (let tries = 1; ; tries++) {
    /** @type {string} */
    let why;
    let waitMs = Math.min(500 * 2 ** (tries - 1), 5000);
    try {
      const { data, error, response } = await client.POST("/v1/calls", {
        params: { header: { "Idempotency-Key": idempotencyKey } },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const replayed = response.headers.get("Idempotent-Replayed") === "true";
      if (data) return { status: response.status, call: data, error: undefined, replayed, tries };
      const detail = error?.error;
      const retryable =
        (response.status === 409 && detail?.type === "idempotency_key_in_progress") ||
        response.status === 429 ||
        response.status >= 500;
      if (!retryable) {
        const call = error && "call" in error ? error.call ?? undefined : undefined;
        return { status: response.status, call, error: detail, replayed, tries };
      }
      why = `${response.status} ${detail?.type ?? ""}`.trim();
      if (response.headers.has("Retry-After")) waitMs = retryAfterMs(response);
    } catch (err) {
      // No answer (timed out, connection dropped): the call may be placing. Same key again.
      why = err instanceof Error ? err.name : String(err);
    }
    if (tries >= maxTries) throw new Error(`POST /v1/calls: no final answer after ${tries} tries (${why})`);
    onRetry(why, waitMs);
    await sleep(waitMs);
  }
}

/**
 * @typedef {object} SseEvent
 * @property {string} id the event's id ("" when it had none)
 * @property {string} event its type (`message` when it had none)
 * @property {string} data its data (the lines joined with "\n")
 */

/**
 * Read one Server-Sent Events stream and yield its events (comment lines are skipped).
 *
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<SseEvent>}
 */
export async function* readSse(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let id = "";
  let event = "";
  /** @type {string[]} */
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { id, event: event || "message", data: data.join("\n") };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") data.push(text);
        else if (field === "event") event = text;
        else if (field === "id") id = text;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Follow an event stream of the service (`/v1/calls/{id}/events` or `/v1/events`) and resume
 * after a dropped connection with `Last-Event-ID`, so that no event is missed or seen twice.
 * The per-call stream ends by itself after the call's last event; `stream.ended` (the key was
 * revoked) ends it with an error.
 *
 * @param {{ baseUrl: string, apiKey: string, path: string, lastEventId?: string,
 *           signal?: AbortSignal, maxReconnects?: number,
 *           onReconnect?: (lastEventId: string, why: string) => void }} options
 * @returns {AsyncGenerator<SseEvent & { json: any }>}
 */
export async function* followEvents(options) {
  const { baseUrl, apiKey, path, signal, maxReconnects = 10, onReconnect = () => {} } = options;
  let lastEventId = options.lastEventId ?? "";
  for (let reconnects = 0; ; reconnects++) {
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${apiKey}`, Accept: "text/event-stream" };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    /** @type {string} */
    let why;
    try {
      const response = await fetch(new URL(path, baseUrl), { headers, signal });
      if (!response.ok || !response.body) {
        const text = await response.text();
        throw new Error(`GET ${path}: HTTP ${response.status} ${text}`);
      }
      for await (const event of readSse(response.body)) {
        if (event.id) lastEventId = event.id;
        const json = JSON.parse(event.data);
        if (event.event === "stream.ended") throw new Error(`stream ended: ${json.type}: ${json.message}`);
        yield { ...event, json };
      }
      return; // the service ended the stream: nothing more will come
    } catch (err) {
      if (signal?.aborted || (err instanceof Error && err.message.startsWith("stream ended")))
        throw err;
      if (err instanceof Error && err.message.startsWith(`GET ${path}: HTTP 4`)) throw err;
      why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    if (reconnects >= maxReconnects) throw new Error(`${path}: gave up after ${reconnects} reconnects (${why})`);
    onReconnect(lastEventId, why);
    await sleep(Math.min(250 * 2 ** reconnects, 5000));
  }
}

/**
 * Check a webhook delivery's signature: `webhook-signature` holds one or more `v1,<base64>`
 * values, HMAC-SHA256 over `${webhook-id}.${webhook-timestamp}.${raw body}` keyed with the base64
 * part of the endpoint's secret (`whsec_...`); the timestamp must be within `toleranceS` of now.
 * Pass the body exactly as received (bytes or the unparsed text), never re-serialized JSON.
 *
 * @param {string} secret the endpoint's `whsec_...` secret
 * @param {Record<string, string | string[] | undefined> | Headers} headers
 * @param {string | Uint8Array} body
 * @param {{ toleranceS?: number, now?: number }} [options] `now` in seconds
 * @returns {boolean}
 */
export function verifyWebhook(secret, headers, body, options = {}) {
  const { toleranceS = 300, now = Date.now() / 1000 } = options;
  /** @param {string} name */
  const header = (name) => {
    const value = headers instanceof Headers ? headers.get(name) : headers[name];
    return Array.isArray(value) ? value[0] : value ?? undefined;
  };
  const id = header("webhook-id");
  const timestamp = header("webhook-timestamp");
  const signatures = header("webhook-signature");
  if (!id || !timestamp || !signatures || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(now - Number(timestamp)) > toleranceS) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = Buffer.from(
    "v1," + createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest("base64"),
  );
  return signatures.split(" ").some((given) => {
    const candidate = Buffer.from(given);
    return candidate.length === expected.length && timingSafeEqual(candidate, expected);
  });
}
