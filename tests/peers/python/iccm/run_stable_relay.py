"""Runs seed 004's ICCM relay (stable_relay.py, the seed's code unchanged) in
front of one backend, as its users ran it: websockets 14.x, `websockets.serve`
with `StableRelay.handle_client`.

Usage: python run_stable_relay.py ws://127.0.0.1:BACKEND_PORT

What differs from `StableRelay.run()`: the config file is written to a
temporary directory instead of /app/config.yaml, and the relay listens on
127.0.0.1 on a port the OS picks instead of 0.0.0.0:8000, so tests can run in
parallel. It prints `listening on ws://127.0.0.1:PORT` once it accepts.
"""

import asyncio
import sys
import tempfile
from pathlib import Path

import websockets
import yaml

from stable_relay import StableRelay


async def main(backend: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(yaml.safe_dump({"backend": backend}))
        relay = StableRelay(str(config))
    async with websockets.serve(relay.handle_client, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
