"""The official Python MCP SDK (mcp[ws]==1.30.0) WebSocket client against `hello`.

Usage: python official_ws_client.py ws://127.0.0.1:PORT/

Runs the session a desktop client would and prints one JSON object of what it
observed; the Rust test (tests/tests/official_clients.rs) makes the assertions,
so this script only reports. It exits non-zero if the SDK itself raises where
it should not.
"""

import asyncio
import json
import sys

import anyio
from mcp import ClientSession, types
from mcp.client.websocket import websocket_client
from mcp.shared.exceptions import McpError


def summarize(result: types.CallToolResult) -> dict:
    return {
        "isError": bool(result.isError),
        "structured": result.structuredContent,
        "text": [c.text for c in result.content if c.type == "text"],
    }


async def main(url: str) -> dict:
    report: dict = {}
    log_messages: list = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        log_messages.append({"level": params.level, "data": params.data})

    async with websocket_client(url) as (read, write):
        async with ClientSession(read, write, logging_callback=on_log) as session:
            init = await session.initialize()
            report["protocolVersion"] = init.protocolVersion
            report["serverName"] = init.serverInfo.name
            report["capabilities"] = init.capabilities.model_dump(exclude_none=True)

            await session.send_ping()
            report["ping"] = True

            # Every page, as a client that honours nextCursor must walk them.
            names, listed, pages, cursor = [], [], 0, None
            while True:
                page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
                pages += 1
                listed += page.tools
                names += [t.name for t in page.tools]
                if not page.nextCursor:
                    break
                cursor = page.nextCursor
            report["tools"] = names
            report["pages"] = pages

            report["echo"] = summarize(await session.call_tool("echo", {"text": "héllo wörld"}))
            report["add"] = summarize(await session.call_tool("add", {"a": 2, "b": 3}))
            # A list result: the SDK checks its structuredContent against the (wrapped) outputSchema.
            report["words"] = summarize(await session.call_tool("words", {"text": "héllo  big world"}))
            report["words_schema"] = next(t.outputSchema for t in listed if t.name == "words")
            report["add_overflow"] = summarize(
                await session.call_tool("add", {"a": 9223372036854775807, "b": 1})
            )
            report["bad_args"] = summarize(await session.call_tool("add", {"a": "two", "b": 3}))
            report["extra_args"] = summarize(await session.call_tool("echo", {"text": "x", "loud": True}))
            try:
                await session.call_tool("no_such_tool", {})
                report["unknown_tool"] = {"error_code": None}
            except McpError as e:
                report["unknown_tool"] = {"error_code": e.error.code, "message": e.error.message}

            progress: list = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append([value, total])

            await session.set_logging_level("debug")
            slow = await session.call_tool("slow", {"steps": 3}, progress_callback=on_progress)
            report["slow"] = summarize(slow)
            report["progress"] = progress
            report["log_messages"] = len(log_messages)

            # Cancellation: this SDK does not send notifications/cancelled on
            # its own, so do what a client does: name the request id (the
            # session's next id) and send the notification.
            cancel_progress: list = []
            answered: list = []

            async def on_cancel_progress(value: float, total: float | None, message: str | None) -> None:
                cancel_progress.append(value)

            request_id = session._request_id  # noqa: SLF001 - the id the next request gets
            async with anyio.create_task_group() as tg:

                async def long_call() -> None:
                    answered.append(
                        await session.call_tool("slow", {"steps": 50}, progress_callback=on_cancel_progress)
                    )

                tg.start_soon(long_call)
                with anyio.fail_after(10):
                    while len(cancel_progress) < 2:
                        await anyio.sleep(0.01)
                await session.send_notification(
                    types.ClientNotification(
                        types.CancelledNotification(
                            params=types.CancelledNotificationParams(requestId=request_id, reason="test cancels")
                        )
                    )
                )
                seen_at_cancel = len(cancel_progress)
                logs_at_cancel = len(log_messages)
                await anyio.sleep(0.6)
                report["cancel"] = {
                    "progress_before": seen_at_cancel,
                    # One notification may already be on the wire when the
                    # cancel arrives; more than that means the work went on.
                    "progress_after": len(cancel_progress) - seen_at_cancel,
                    "logs_after": len(log_messages) - logs_at_cancel,
                    "answered": bool(answered),
                }
                tg.cancel_scope.cancel()

            await session.send_ping()
            report["ping_after_cancel"] = True
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
