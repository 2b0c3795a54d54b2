// The official TypeScript MCP SDK (1.32.2) stdio client, launching mcp-relay
// in front of a WebSocket backend, through a backend crash and restart.
//
// Usage: node relay_stdio_client.mjs /path/to/mcp-relay ws://127.0.0.1:PORT/
//
// Same protocol as tests/peers/python/relay_stdio_client.py: prints
// `CONTROL kill` and waits for a line on stdin, later `CONTROL restart` and
// at once makes a call the relay must hold; the last line is a JSON report.

import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [relay, url] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function control(word) {
  process.stdout.write(`CONTROL ${word}\n`);
}

function summarize(result) {
  return {
    isError: Boolean(result.isError),
    structured: result.structuredContent ?? null,
    text: result.content.filter((c) => c.type === "text").map((c) => c.text),
  };
}

const report = {};
const transport = new StdioClientTransport({
  command: relay,
  args: [url, "--reconnect-max-delay", "0.5"],
  stderr: "inherit",
});
const client = new Client({ name: "relay-test", version: "1.0.0" });
await client.connect(transport);
report.serverName = client.getServerVersion()?.name;

const names = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  names.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);
report.tools = names.sort();
report.echo = summarize(await client.callTool({ name: "echo", arguments: { text: "before" } }));
report.add = summarize(await client.callTool({ name: "add", arguments: { a: 2, b: 3 } }));

// A long call in flight when the backend dies gets an error, not silence.
const lost = {};
let running;
const firstProgress = new Promise((resolve) => {
  running = resolve;
});
const longCall = client
  .callTool({ name: "slow", arguments: { steps: 100 } }, undefined, { onprogress: () => running() })
  .then((r) => {
    lost.result = summarize(r);
  })
  .catch((e) => {
    lost.error_code = e.code;
    lost.message = e.message;
  })
  .finally(() => {
    lost.at = performance.now();
  });
// Its first progress: the backend is working on it.
await firstProgress;
control("kill");
await lines.next();
const killedAt = performance.now();
await longCall;
lost.seconds_after_kill = (lost.at - killedAt) / 1000;
delete lost.at;
report.in_flight_at_kill = lost;

// Sent while the backend is down: the relay holds it until it is back.
control("restart");
const started = performance.now();
report.add_after_restart = summarize(await client.callTool({ name: "add", arguments: { a: 20, b: 22 } }));
report.seconds_waiting_for_backend = (performance.now() - started) / 1000;
report.echo_after_restart = summarize(await client.callTool({ name: "echo", arguments: { text: "after" } }));
await client.ping();
report.ping_after_restart = true;

await client.close();
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(0);
