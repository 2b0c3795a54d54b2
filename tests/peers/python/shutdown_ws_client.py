"""The official Python MCP SDK (mcp[ws]==1.30.0) WebSocket client while
`hello` shuts down under it (SIGTERM).

Usage: python shutdown_ws_client.py ws://127.0.0.1:PORT/

Starts a slow call; at its first progress prints `CONTROL terminate` (the Rust
test, tests/tests/official_clients_shutdown.rs, then sends SIGTERM to the
server), and reports as one JSON line how the session ended. It must end on
its own: a client left hanging is what the test is for.
"""

import json
import sys

import anyio
from mcp import ClientSession
from mcp.client.websocket import websocket_client
from mcp.shared.exceptions import McpError


def describe(e: BaseException) -> list:
    """Every exception in a (possibly nested) group, as `Type: message`."""
    if isinstance(e, BaseExceptionGroup):
        return [d for inner in e.exceptions for d in describe(inner)]
    return [f"{type(e).__name__}: {e}"]


async def main(url: str) -> dict:
    report: dict = {}
    running = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        running.set()

    try:
        async with websocket_client(url) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()

                async def slow() -> None:
                    try:
                        result = await session.call_tool("slow", {"steps": 3}, progress_callback=on_progress)
                        report["slow"] = [c.text for c in result.content if c.type == "text"]
                    except McpError as e:
                        report["slow_error"] = e.error.message

                async with anyio.create_task_group() as tg:
                    tg.start_soon(slow)
                    await running.wait()
                    print("CONTROL terminate", flush=True)
                try:
                    await session.send_ping()
                    report["ping_after_shutdown"] = "answered"
                except McpError as e:
                    report["ping_after_shutdown"] = e.error.message
    except BaseException as e:  # the transport raises the close out of websocket_client
        report["ended_with"] = describe(e)
    return report


if __name__ == "__main__":
    print(json.dumps(anyio.run(main, sys.argv[1])), flush=True)
