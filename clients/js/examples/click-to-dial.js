// @ts-check
/**
 * Click-to-dial from a Node backend: what a CRM's server does when an agent clicks a number.
 *
 *   GCDIAL_URL=http://127.0.0.1:8080 GCDIAL_API_KEY=gcd_... \
 *     node examples/click-to-dial.js --agent alice@example.com --to "(415) 555-0100" --ticket 4711
 *
 * 1. Places the call with an Idempotency-Key made from the click (the ticket and a click id), and
 *    retries with the same key when no final answer came: a 409 `idempotency_key_in_progress` is
 *    waited out as its Retry-After says. The customer is rung once whatever happens.
 * 2. Follows the call's events by SSE until it is over, resuming with Last-Event-ID after a
 *    dropped connection (`--drop-after N` drops it on purpose after N events, to show it).
 * 3. Reads the agent's calls back a page at a time with the list's cursor.
 *
 * Prints one JSON object per line: what a CRM would store on the ticket.
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { createGcdialClient, followEvents, placeCall } from "../index.js";

const { values: args } = parseArgs({
  options: {
    agent: { type: "string" },
    to: { type: "string" },
    ticket: { type: "string", default: "" },
    click: { type: "string", default: randomUUID() },
    "timeout-ms": { type: "string", default: "30000" },
    "drop-after": { type: "string", default: "0" },
    "page-size": { type: "string", default: "2" },
  },
});

const baseUrl = process.env.GCDIAL_URL;
const apiKey = process.env.GCDIAL_API_KEY;
if (!baseUrl || !apiKey || !args.agent || !args.to) {
  console.error(
    "usage: GCDIAL_URL=... GCDIAL_API_KEY=... node click-to-dial.js --agent EMAIL --to NUMBER " +
      "[--ticket ID] [--click ID] [--timeout-ms MS] [--drop-after N]",
  );
  process.exit(2);
}
/** @param {Record<string, unknown>} line */
const say = (line) => console.log(JSON.stringify(line));

const client = createGcdialClient({ baseUrl, apiKey });

// 1. One click, one key: a retry of this click sends the same key and the same body.
const placed = await placeCall(
  client,
  {
    agent: args.agent,
    to: args.to,
    label: "crm",
    attributes: args.ticket ? { ticket: args.ticket } : {},
  },
  {
    idempotencyKey: `ticket-${args.ticket || "none"}-click-${args.click}`,
    timeoutMs: Number(args["timeout-ms"]),
    onRetry: (why, waitMs) => say({ retry: why, waitMs }),
  },
);
if (!placed.call || placed.status !== 202) {
  say({ refused: placed.error?.type, message: placed.error?.message, status: placed.status });
  process.exit(1);
}
const call = placed.call;
say({ placed: call.id, status: call.status, tries: placed.tries, replayed: placed.replayed });

// 2. The call's events, resumed after a drop; the stream ends after the call's last event.
const dropAfter = Number(args["drop-after"]);
let outcome = call.outcome ?? null;
/** @type {string[]} */
const ids = [];
let lastEventId = "";
for (let dropped = false; ; ) {
  const connection = new AbortController();
  const stream = followEvents({
    baseUrl,
    apiKey,
    path: `/v1/calls/${call.id}/events`,
    lastEventId, // "" the first time: the call's events from its first
    signal: connection.signal,
    onReconnect: (from, why) => say({ reconnect: from, why }),
  });
  let cut = false;
  for await (const event of stream) {
    ids.push(event.id);
    lastEventId = event.id;
    const { call: now, step } = event.json;
    say({ event: event.event, id: event.id, step: step ?? now?.status });
    if (event.event === "call.ended") outcome = now?.outcome ?? null;
    if (!dropped && dropAfter && ids.length === dropAfter) {
      connection.abort(); // as if the network dropped: open a new stream after the last id
      dropped = cut = true;
      break;
    }
  }
  if (!cut) break; // the service ended the stream: the call is over
  say({ dropped: true, resumeAfter: lastEventId });
}
say({ ended: call.id, outcome, events: ids.length, unique: new Set(ids).size });

// 3. The agent's calls, newest first, a page at a time: `next` is the next page's cursor.
/** @type {string | undefined} */
let cursor;
let pages = 0;
/** @type {string[]} */
const history = [];
do {
  const { data, error } = await client.GET("/v1/calls", {
    params: { query: { agent: args.agent, limit: Number(args["page-size"]), cursor } },
  });
  if (!data) throw new Error(`GET /v1/calls: ${error?.error.type}: ${error?.error.message}`);
  pages += 1;
  history.push(...data.calls.map((c) => c.id));
  cursor = data.next ?? undefined;
} while (cursor);
say({ history: history.length, pages, includesThisCall: history.includes(call.id) });
