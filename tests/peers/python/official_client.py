"""The official Python MCP SDK (mcp 2.x) `Client` against `hello`, over
Streamable HTTP or stdio (launching `hello --stdio` itself, no relay).

Usage: python official_client.py http://127.0.0.1:PORT/mcp MODE
       python official_client.py stdio /path/to/hello MODE

MODE is the SDK's connect mode: `legacy` (the initialize handshake, a
2025-11-25 session) or `auto` (probes server/discover and, against `hello`,
speaks the stateless 2026-07-28 revision). Prints one JSON object of what it
observed; the Rust test (tests/tests/official_clients.rs) makes the
assertions. Exits non-zero if the SDK raises where it should not.
"""

import json
import warnings
import sys

import anyio
from mcp import MCPError, StdioServerParameters, types
from mcp.client.client import Client
from mcp.shared.exceptions import MCPDeprecationWarning

# ping and logging/setLevel are used on purpose on handshake-era sessions.
warnings.simplefilter("ignore", MCPDeprecationWarning)


def summarize(result: types.CallToolResult) -> dict:
    return {
        "isError": bool(result.is_error),
        "structured": result.structured_content,
        "text": [c.text for c in result.content if c.type == "text"],
    }


async def main(argv: list[str]) -> dict:
    if argv[0] == "stdio":
        env = {"RUST_LOG": "warn", "MCP_TOOLS_PAGE_SIZE": "1"}
        server: object = StdioServerParameters(command=argv[1], args=["--stdio"], env=env)
        mode = argv[2]
    else:
        server, mode = argv[0], argv[1]
    report: dict = {"mode": mode}
    log_messages: list = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        log_messages.append({"level": params.level, "data": params.data})

    # log_level opts every stateless request in to log messages (2026-07-28);
    # on a session, logging/setLevel below does that instead.
    async with Client(server, mode=mode, logging_callback=on_log, log_level="debug", cache=None) as client:
        report["protocolVersion"] = client.protocol_version
        report["serverName"] = client.server_info.name if client.server_info else None
        modern = client.protocol_version == "2026-07-28"

        if not modern:
            await client.send_ping()
            report["ping"] = True

        listed, pages, cursor = [], 0, None
        while True:
            page = await client.list_tools(cursor=cursor)
            pages += 1
            listed += page.tools
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        report["tools"] = [t.name for t in listed]
        report["pages"] = pages

        report["echo"] = summarize(await client.call_tool("echo", {"text": "héllo wörld"}))
        report["add"] = summarize(await client.call_tool("add", {"a": 2, "b": 3}))
        # A list result: the SDK checks its structuredContent against the outputSchema
        # (wrapped in an object before 2026-07-28, bare from it on).
        report["words"] = summarize(await client.call_tool("words", {"text": "héllo  big world"}))
        report["words_schema"] = next(t.output_schema for t in listed if t.name == "words")
        report["add_overflow"] = summarize(await client.call_tool("add", {"a": 9223372036854775807, "b": 1}))
        report["bad_args"] = summarize(await client.call_tool("add", {"a": "two", "b": 3}))
        report["extra_args"] = summarize(await client.call_tool("echo", {"text": "x", "loud": True}))
        try:
            await client.call_tool("no_such_tool", {})
            report["unknown_tool"] = {"error_code": None}
        except MCPError as e:
            report["unknown_tool"] = {"error_code": e.code, "message": e.message}

        progress: list = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append([value, total])

        if not modern:
            await client.set_logging_level("debug")
        slow = await client.call_tool("slow", {"steps": 3}, progress_callback=on_progress)
        report["slow"] = summarize(slow)
        report["progress"] = progress
        report["log_messages"] = len(log_messages)

        # Cancellation: cancelling the task makes the SDK cancel the request
        # (notifications/cancelled on a session, closing the stream on 2026-07-28).
        cancel_progress: list = []
        answered: list = []

        async def on_cancel_progress(value: float, total: float | None, message: str | None) -> None:
            cancel_progress.append(value)

        async with anyio.create_task_group() as tg:

            async def long_call() -> None:
                answered.append(await client.call_tool("slow", {"steps": 50}, progress_callback=on_cancel_progress))

            tg.start_soon(long_call)
            with anyio.fail_after(10):
                while len(cancel_progress) < 2:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        seen_at_cancel = len(cancel_progress)
        logs_at_cancel = len(log_messages)
        await anyio.sleep(0.6)
        report["cancel"] = {
            "progress_before": seen_at_cancel,
            # One notification may already be on the wire when the cancel
            # arrives; more than that means the work went on.
            "progress_after": len(cancel_progress) - seen_at_cancel,
            "logs_after": len(log_messages) - logs_at_cancel,
            "answered": bool(answered),
        }

        if not modern:
            await client.send_ping()
        else:
            await client.list_tools()
        report["ping_after_cancel"] = True
    return report


if __name__ == "__main__":
    print(json.dumps(anyio.run(main, sys.argv[1:])), flush=True)
