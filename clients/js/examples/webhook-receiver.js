// @ts-check
/**
 * A webhook receiver for `gcdial serve`: checks each delivery's signature before believing it,
 * dedupes on `webhook-id` (a retry or a redelivery sends the same id), answers 2xx fast.
 *
 *   GCDIAL_WEBHOOK_SECRET=whsec_... PORT=8787 node examples/webhook-receiver.js
 *
 * Prints one JSON object per line for each delivery: `{"webhook": type, ...}` when the signature
 * holds, `{"rejected": why}` (answered 400) when it does not.
 */
import { createServer } from "node:http";
import { verifyWebhook } from "../index.js";

const secret = process.env.GCDIAL_WEBHOOK_SECRET;
if (!secret || !secret.startsWith("whsec_")) {
  console.error("set GCDIAL_WEBHOOK_SECRET to the secret POST /v1/webhooks answered (whsec_...)");
  process.exit(2);
}
/** @param {Record<string, unknown>} line */
const say = (line) => console.log(JSON.stringify(line));
const seen = new Set();

const server = createServer((request, response) => {
  /** @type {Buffer[]} */
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks); // the raw bytes: the signature is over them
    if (request.method !== "POST" || !verifyWebhook(secret, request.headers, body)) {
      say({ rejected: "bad signature or stale timestamp", id: request.headers["webhook-id"] });
      response.writeHead(400).end();
      return;
    }
    const id = String(request.headers["webhook-id"]);
    const event = JSON.parse(body.toString("utf8"));
    if (!seen.has(id)) {
      seen.add(id);
      const call = event.data?.call;
      say({
        webhook: event.type,
        id,
        call: call?.id,
        outcome: call?.outcome,
        ticket: call?.attributes?.ticket,
      });
    }
    response.writeHead(204).end();
  });
});

server.listen(Number(process.env.PORT ?? 8787), "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : process.env.PORT;
  say({ listening: `http://127.0.0.1:${port}/hook` });
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
