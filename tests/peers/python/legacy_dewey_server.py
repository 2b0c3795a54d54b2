"""A WebSocket MCP server that answers like the Python Dewey in production.

Usage: python legacy_dewey_server.py   (prints `listening on ws://127.0.0.1:PORT`)

It reproduces what our client must tolerate from the services it replaces:
no `mcp` subprotocol in the upgrade answer, protocolVersion 2024-11-05, tool
output only as pretty-printed JSON in content[0].text (no structuredContent),
tool failures as JSON-RPC errors, and legacy direct calls whose method is the
tool name. It also records the subprotocols each connection offered, so the
test can see the client offered `mcp` and fell back.
"""

import asyncio
import json
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

offered_subprotocols: list = []


class ToolError(Exception):
    def __init__(self, message: str, code: int = -32000):
        super().__init__(message)
        self.code = code


async def dewey_add(a: int, b: int) -> dict:
    return {"sum": a + b}


async def dewey_get_conversation(conversation_id: str) -> dict:
    raise ToolError(f"Conversation {conversation_id} not found", code=-32001)


async def dewey_offered_subprotocols() -> dict:
    return {"offered": offered_subprotocols}


TOOLS = {
    "dewey_add": (dewey_add, {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}),
    "dewey_get_conversation": (
        dewey_get_conversation,
        {"type": "object", "properties": {"conversation_id": {"type": "string"}}, "required": ["conversation_id"]},
    ),
    "dewey_offered_subprotocols": (dewey_offered_subprotocols, {"type": "object", "properties": {}}),
}


async def process(request: dict) -> dict | None:
    request_id = request.get("id")
    method = request.get("method")
    params = request.get("params") or {}
    if request_id is None:
        return None  # notifications get no answer
    if method == "initialize":
        result = {
            "protocolVersion": "2024-11-05",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "dewey-mcp-server", "version": "1.0.0"},
        }
        return {"jsonrpc": "2.0", "result": result, "id": request_id}
    if method == "tools/list":
        tools = [{"name": name, "description": name, "inputSchema": schema} for name, (_, schema) in TOOLS.items()]
        return {"jsonrpc": "2.0", "result": {"tools": tools}, "id": request_id}
    if method == "tools/call":
        name, arguments = params.get("name"), params.get("arguments", {})
    else:
        name, arguments = method, params  # legacy direct call
    if name not in TOOLS:
        return {"jsonrpc": "2.0", "error": {"code": -32601, "message": f"Tool not found: {name}"}, "id": request_id}
    try:
        value = await TOOLS[name][0](**arguments)
    except ToolError as e:
        return {"jsonrpc": "2.0", "error": {"code": e.code, "message": str(e)}, "id": request_id}
    if method == "tools/call":
        result = {"content": [{"type": "text", "text": json.dumps(value, indent=2)}]}
    else:
        result = value
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


async def handle(websocket) -> None:
    offered_subprotocols.append(websocket.request.headers.get("Sec-WebSocket-Protocol"))
    try:
        async for message in websocket:
            response = await process(json.loads(message))
            if response is not None:
                await websocket.send(json.dumps(response))
    except ConnectionClosed:
        pass  # the client's refused first attempt (it offered `mcp`) closes abruptly


async def main() -> None:
    async with serve(handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
