"""The official Python MCP SDK (mcp 2.x) stdio client, launching mcp-relay in
front of a WebSocket backend, through a backend crash and restart.

Usage: python relay_stdio_client.py /path/to/mcp-relay ws://127.0.0.1:PORT/

The Rust test (tests/tests/relay_official_clients.rs) drives the backend: this
script prints `CONTROL kill` and waits for a line on stdin (the backend is
dead by then), later prints `CONTROL restart` and at once makes a call that
the relay must hold until the backend is back. The last line is a JSON report;
the assertions are in the Rust test. Exits non-zero if the SDK raises where it
should not.
"""

import json
import sys
import time

import anyio
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client, types


def control(word: str) -> None:
    print(f"CONTROL {word}", flush=True)


async def wait_for_go() -> None:
    await anyio.to_thread.run_sync(sys.stdin.readline)


def summarize(result: types.CallToolResult) -> dict:
    return {
        "isError": bool(result.is_error),
        "structured": result.structured_content,
        "text": [c.text for c in result.content if c.type == "text"],
    }


async def main(relay: str, url: str) -> dict:
    report: dict = {}
    params = StdioServerParameters(command=relay, args=[url, "--reconnect-max-delay", "0.5"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            report["protocolVersion"] = init.protocol_version
            report["serverName"] = init.server_info.name

            names, cursor = [], None
            while True:
                page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
                names += [t.name for t in page.tools]
                if not page.next_cursor:
                    break
                cursor = page.next_cursor
            report["tools"] = sorted(names)
            report["echo"] = summarize(await session.call_tool("echo", {"text": "before"}))
            report["add"] = summarize(await session.call_tool("add", {"a": 2, "b": 3}))

            # A long call in flight when the backend dies gets an error, not silence.
            lost: dict = {}
            running = anyio.Event()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                running.set()

            async def long_call() -> None:
                try:
                    result = await session.call_tool("slow", {"steps": 100}, progress_callback=on_progress)
                    lost["result"] = summarize(result)
                except MCPError as e:
                    lost["error_code"] = e.code
                    lost["message"] = e.message
                lost["at"] = time.monotonic()

            async with anyio.create_task_group() as tg:
                tg.start_soon(long_call)
                # Its first progress: the backend is working on it.
                await running.wait()
                control("kill")
                await wait_for_go()
                killed_at = time.monotonic()
            lost["seconds_after_kill"] = round(lost.pop("at") - killed_at, 3)
            report["in_flight_at_kill"] = lost

            # Sent while the backend is down: the relay holds it until it is back.
            control("restart")
            started = time.monotonic()
            report["add_after_restart"] = summarize(await session.call_tool("add", {"a": 20, "b": 22}))
            report["seconds_waiting_for_backend"] = round(time.monotonic() - started, 3)
            report["echo_after_restart"] = summarize(await session.call_tool("echo", {"text": "after"}))
            await session.send_ping()
            report["ping_after_restart"] = True
    return report


if __name__ == "__main__":
    print(json.dumps(anyio.run(main, sys.argv[1], sys.argv[2])), flush=True)
