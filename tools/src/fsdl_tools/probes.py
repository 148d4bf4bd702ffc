"""What answers on a network port, asked from here or from inside a container.

Self-contained (the standard library only), so that a test can run this file's text inside a container
that has only Python: ``python -c "$(cat probes.py)" reach HOST:PORT...`` or ``... grpc HOST PORT``; each
prints one JSON line.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS_FRAME = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # empty SETTINGS: length 0, type 4, no flags, stream 0


def reach(targets: list[str], timeout: float = 3.0) -> dict[str, str]:
    """For each ``host:port``, "open" when a TCP connection is taken, else the error's name."""
    found = {}
    for target in targets:
        host, port = target.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
            found[target] = "open"
        except OSError as exc:
            found[target] = type(exc).__name__
    return found


def grpc_clients(host: str, port: int, timeout: float = 5.0) -> dict[str, str]:
    """Whether a gRPC server at ``host:port`` takes a client without a certificate: speaks HTTP/2
    (gRPC's transport) to it in clear, and over TLS without a client certificate. Each value is the
    first frame header that came back in hex (a server that takes the client answers with SETTINGS:
    type ``04``, :func:`takes_clients`), or why nothing did."""
    found = {}
    try:
        with socket.create_connection((host, port), timeout=timeout) as plain:
            plain.sendall(HTTP2_PREFACE + SETTINGS_FRAME)
            found["plaintext"] = plain.recv(9).hex()
    except OSError as exc:
        found["plaintext"] = f"{type(exc).__name__}: {exc}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with context.wrap_socket(socket.create_connection((host, port), timeout=timeout)) as tls:
            tls.sendall(HTTP2_PREFACE + SETTINGS_FRAME)
            found["tls"] = tls.recv(9).hex()
    except OSError as exc:  # ssl.SSLError is an OSError
        found["tls"] = f"{type(exc).__name__}: {exc}"
    return found


def takes_clients(answers: dict[str, str]) -> list[str]:
    """The ways (of :func:`grpc_clients`) in which the server answered as a gRPC server does."""
    return [way for way, answer in answers.items() if answer[6:8] == "04"]


if __name__ == "__main__":
    if sys.argv[1] == "reach":
        print(json.dumps(reach(sys.argv[2:])))
    else:
        print(json.dumps(grpc_clients(sys.argv[2], int(sys.argv[3]))))
