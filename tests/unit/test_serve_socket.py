"""The socket `stepline server` and `stepline dev` serve on: its connections send without delay.

asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections of a socket that says it
is TCP; without it a keep-alive client's requests sent back to back waited about 40 ms each.
"""

from __future__ import annotations

import asyncio
import socket

from stepline._blocking import run_to_end
from stepline.cli._serve import listen


async def _accepted_nodelay(sock: socket.socket) -> int:
    """TCP_NODELAY on the server's side of a connection to `sock`, as asyncio leaves it."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted = writer.get_extra_info("socket")
        seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=sock)
    host, port = sock.getsockname()[:2]
    _, client = await asyncio.open_connection(host, port)
    try:
        return await asyncio.wait_for(seen, 10)
    finally:
        client.close()
        server.close()
        await server.wait_closed()


def test_the_server_s_connections_have_nagle_s_algorithm_off() -> None:
    sock = listen("127.0.0.1", 0)
    assert run_to_end(_accepted_nodelay(sock)) != 0
