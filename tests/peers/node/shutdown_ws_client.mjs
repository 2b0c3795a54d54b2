// The official TypeScript MCP SDK (1.32.2) WebSocketClientTransport while
// `hello` shuts down under it (SIGTERM).
//
// Usage: node shutdown_ws_client.mjs ws://127.0.0.1:PORT/
//
// Same protocol as tests/peers/python/shutdown_ws_client.py: starts a slow
// call, prints `CONTROL terminate` at its first progress, and reports as one
// JSON line how the session ended.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
import WebSocket from "ws";

// Node 20 has no global WebSocket; the transport expects one.
globalThis.WebSocket ??= WebSocket;

const [url] = process.argv.slice(2);
const report = {};
const client = new Client({ name: "shutdown-test", version: "1.0.0" });
const closed = new Promise((resolve) => {
  client.onclose = () => {
    report.closed = true;
    resolve();
  };
});
await client.connect(new WebSocketClientTransport(new URL(url)));

let running;
const firstProgress = new Promise((resolve) => {
  running = resolve;
});
const slow = client
  .callTool({ name: "slow", arguments: { steps: 3 } }, undefined, { onprogress: () => running() })
  .then((r) => {
    report.slow = r.content.filter((c) => c.type === "text").map((c) => c.text);
  })
  .catch((e) => {
    report.slow_error = String(e);
  });
await firstProgress;
process.stdout.write("CONTROL terminate\n");
await slow;
await closed;
try {
  await client.ping();
  report.ping_after_shutdown = "answered";
} catch (e) {
  report.ping_after_shutdown = String(e);
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(0);
