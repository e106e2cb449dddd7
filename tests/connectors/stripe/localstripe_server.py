"""Run localstripe for the tests: on 127.0.0.1, on a port the OS picks, with state in memory only.

``python -m localstripe`` listens on every interface and saves its state to
``/tmp/localstripe.pickle`` after each write (shared by every run on the machine); the tests want
neither, so this starts the same aiohttp app on a loopback socket with saving turned off. The
chosen port is printed on the first line of stdout.
"""

from __future__ import annotations

import socket
import sys


def main() -> None:
    from aiohttp import web
    from localstripe import resources, server

    def keep_in_memory(self: object) -> None:
        """No save to disk: each server starts empty and leaves nothing behind."""

    resources.Store.dump_to_disk = keep_in_memory  # type: ignore[method-assign]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    sys.exit(main())
