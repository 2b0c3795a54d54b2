"""The seeds' Godot facade pattern (seed 004, "GODOT - MCP Server
Implementation"), reduced to what godot-bench measures: a websockets server
that handles one request at a time per connection, and whose logger_log does
LPUSH + LTRIM on a Redis list per call. Written for the benchmark from the
seed's description; not the seed's code.

Usage: python seed_godot.py REDIS_HOST REDIS_PORT QUEUE_NAME MAX_QUEUE_SIZE
Prints `listening on ws://127.0.0.1:PORT` once ready.
"""
import asyncio
import json
import sys
from datetime import datetime, timezone

import redis.asyncio as redis
from websockets.asyncio.server import serve

HOST, PORT, QUEUE, MAX = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
client = None  # made on the running loop, in main()


async def logger_log(component, level, message, trace_id=None, data=None):
    entry = {
        "component": component,
        "level": level.upper(),
        "message": message,
        "trace_id": trace_id,
        "data": data,
        "created_at": datetime.now(timezone.utc).isoformat(),
    }
    await client.lpush(QUEUE, json.dumps(entry))
    await client.ltrim(QUEUE, 0, MAX - 1)
    return {"status": "ok", "message": "Log entry queued."}


async def handle(websocket):
    async for message in websocket:
        request = json.loads(message)
        request_id = request.get("id")
        method = request.get("method")
        if method == "initialize":
            result = {"protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "godot", "version": "1.0.0"}}
        elif method == "tools/call":
            params = request.get("params", {})
            if params.get("name") != "logger_log":
                await websocket.send(json.dumps({"jsonrpc": "2.0", "id": request_id,
                                                 "error": {"code": -32000, "message": "unknown tool"}}))
                continue
            output = await logger_log(**params.get("arguments", {}))
            result = {"content": [{"type": "text", "text": json.dumps(output)}]}
        elif request_id is None:
            continue
        else:
            result = {}
        await websocket.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}))


async def main():
    global client
    client = redis.Redis(host=HOST, port=PORT, decode_responses=True)
    await client.ping()
    async with serve(handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
