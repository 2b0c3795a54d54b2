// The official TypeScript MCP SDK (1.32.2) against `hello`, over
// WebSocketClientTransport (a ws:// URL) or StreamableHTTPClientTransport
// (an http:// URL).
//
// Usage: node official_client.mjs ws://127.0.0.1:PORT/ | http://127.0.0.1:PORT/mcp
//
// Prints one JSON object of what it observed; the Rust test
// (tests/tests/official_clients.rs) makes the assertions. The SDK validates
// structuredContent against each tool's outputSchema itself and throws when
// it is missing or invalid, so a clean run is already a compatibility check.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
import { LoggingMessageNotificationSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import WebSocket from "ws";

// Node 20 has no global WebSocket; the transport expects one.
globalThis.WebSocket ??= WebSocket;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function summarize(result) {
  return {
    isError: Boolean(result.isError),
    structured: result.structuredContent ?? null,
    text: result.content.filter((c) => c.type === "text").map((c) => c.text),
  };
}

async function main(url) {
  const report = {};
  const client = new Client({ name: "official-ts-test", version: "1.0.0" });
  let logMessages = 0;
  client.setNotificationHandler(LoggingMessageNotificationSchema, () => {
    logMessages += 1;
  });
  const endpoint = new URL(url);
  const transport =
    endpoint.protocol === "ws:" ? new WebSocketClientTransport(endpoint) : new StreamableHTTPClientTransport(endpoint);
  await client.connect(transport);
  report.protocolVersion = client.transport?.protocolVersion ?? null;
  report.sessionId = transport.sessionId ?? null;
  report.serverName = client.getServerVersion()?.name ?? null;
  report.capabilities = client.getServerCapabilities() ?? null;

  await client.ping();
  report.ping = true;

  const names = [];
  const listed = [];
  let pages = 0;
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    pages += 1;
    listed.push(...page.tools);
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  report.tools = names;
  report.pages = pages;

  report.echo = summarize(await client.callTool({ name: "echo", arguments: { text: "héllo wörld" } }));
  report.add = summarize(await client.callTool({ name: "add", arguments: { a: 2, b: 3 } }));
  // A list result: the SDK checks its structuredContent against the (wrapped) outputSchema.
  report.words = summarize(await client.callTool({ name: "words", arguments: { text: "héllo  big world" } }));
  report.words_schema = listed.find((t) => t.name === "words")?.outputSchema ?? null;
  report.add_overflow = summarize(
    await client.callTool({ name: "add", arguments: { a: Number.MAX_SAFE_INTEGER, b: Number.MAX_SAFE_INTEGER * 1024 } }),
  );
  report.bad_args = summarize(await client.callTool({ name: "add", arguments: { a: "two", b: 3 } }));
  report.extra_args = summarize(await client.callTool({ name: "echo", arguments: { text: "x", loud: true } }));
  try {
    await client.callTool({ name: "no_such_tool", arguments: {} });
    report.unknown_tool = { error_code: null };
  } catch (e) {
    report.unknown_tool = { error_code: e instanceof McpError ? e.code : null, message: String(e.message) };
  }

  await client.setLoggingLevel("debug");
  const progress = [];
  const slow = await client.callTool({ name: "slow", arguments: { steps: 3 } }, undefined, {
    onprogress: (p) => progress.push([p.progress, p.total ?? null]),
  });
  report.slow = summarize(slow);
  report.progress = progress;
  report.log_messages = logMessages;

  // Cancellation: aborting the request makes the SDK send notifications/cancelled.
  const controller = new AbortController();
  const cancelProgress = [];
  let answered = false;
  const pending = client
    .callTool({ name: "slow", arguments: { steps: 50 } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => cancelProgress.push(p.progress),
    })
    .then(
      () => {
        answered = true;
      },
      () => {},
    );
  const deadline = Date.now() + 10_000;
  while (cancelProgress.length < 2 && Date.now() < deadline) await sleep(10);
  controller.abort("test cancels");
  const seenAtCancel = cancelProgress.length;
  const logsAtCancel = logMessages;
  await pending;
  await sleep(600);
  // The SDK drops an aborted request's progress handler, but log messages are
  // session-wide: if the server kept working, they would keep coming.
  report.cancel = {
    progress_before: seenAtCancel,
    progress_after: cancelProgress.length - seenAtCancel,
    logs_after: logMessages - logsAtCancel,
    answered,
  };

  await client.ping();
  report.ping_after_cancel = true;
  if (transport instanceof StreamableHTTPClientTransport) {
    // DELETE: the session ends on the server too.
    await transport.terminateSession();
    report.terminated = transport.sessionId === undefined;
  }
  await client.close();
  return report;
}

main(process.argv[2]).then(
  (report) => {
    console.log(JSON.stringify(report));
    process.exit(0);
  },
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
