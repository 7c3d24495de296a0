"""`python -m tcpcrypt.drafts connect HOST PORT MESSAGE` or `... serve PORT`: one exchange in
the drafts' profile, for interoperability runs. The client sends MESSAGE and reads the reply
(as long); the server reads one message and sends it back reversed. Each prints one JSON line:
its session ID and what it received. Needs the kernel program loaded (TCPCRYPT_BPF_DIR)."""

from __future__ import annotations

import argparse
import json
import sys

from tcpcrypt.drafts.endpoint import DraftListener, connect
from tcpcrypt.errors import TcpcryptError
from tcpcrypt.kernel.api import KernelEno


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tcpcrypt.drafts")
    commands = parser.add_subparsers(dest="command", required=True)
    client = commands.add_parser("connect")
    client.add_argument("host")
    client.add_argument("port", type=int)
    client.add_argument("message")
    server = commands.add_parser("serve")
    server.add_argument("port", type=int)
    server.add_argument("--length", type=int, required=True, help="bytes to read")
    args = parser.parse_args(argv)
    try:
        with KernelEno() as kernel:
            if args.command == "connect":
                message = args.message.encode()
                with connect((args.host, args.port), kernel) as session:
                    session.sendall(message)
                    received = session.recv_exactly(len(message))
                    print(json.dumps({"session_id": session.session_id.hex(),
                                      "received": received.decode()}), flush=True)
            else:
                listener = DraftListener(("0.0.0.0", args.port), kernel)
                print("listening", flush=True)
                with listener.accept() as session:
                    received = session.recv_exactly(args.length)
                    session.sendall(received[::-1])
                    print(json.dumps({"session_id": session.session_id.hex(),
                                      "received": received.decode()}), flush=True)
                    session.recv()  # until the client closes
                listener.close()
    except (TcpcryptError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
