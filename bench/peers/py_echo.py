# SPDX-License-Identifier: MIT
# The python3-websockets (Debian) echo server for the bench suite: asyncio, default settings
# except compression off and a 64 MiB message limit. usage: python3 py_echo.py PORT
import asyncio
import signal
import sys

import websockets


async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)


async def main(port):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", port, compression=None, max_size=64 << 20):
        print(f"py_echo: listening on ws://127.0.0.1:{port}/", file=sys.stderr, flush=True)
        await stop


asyncio.run(main(int(sys.argv[1])))
