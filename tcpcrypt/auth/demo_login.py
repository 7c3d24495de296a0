"""A small web app that logs users in with a password bound to the tcpcrypt session ID.

The password never crosses the wire and a login proof is good for one connection only:

    GET  /                 -> "session <hex>" or "no tcpcrypt" (what the middleware saw)
    GET  /salt?user=NAME   -> the user's salt (hex); unknown users get a stable fake one
    POST /login            user=NAME&proof=HEX  -> 200 "welcome NAME" | 401 | 403

with proof = HMAC-SHA256(scrypt(password, salt), "tcpcrypt-auth v1 web login" | 0x00 |
session ID). The server checks it against the session ID of the connection the POST arrived
on (`TCP_CRYPT_SESSID`, from `tcpcrypt.auth.web`); a relay in the middle has a different
session ID on each side, so a proof it forwards fails, and a proof captured on one connection
is useless on any other. Without tcpcrypt the login is refused (403). The server stores
scrypt(password, salt), which is password-equivalent for this proof; the `pake` method avoids
that for protocols other than HTTP.

Run it: `python -m tcpcrypt.auth.demo_login --port 8080 --user alice:secret`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from tcpcrypt.auth.web import ENV_KEY, SessionIdMiddleware, TcpcryptWSGIServer

LOGIN_LABEL = b"tcpcrypt-auth v1 web login"
SALT_LENGTH = 16
MAX_FORM = 4096


def password_key(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=1 << 14, r=8, p=1, dklen=32)


def login_proof(key: bytes, session_id: bytes) -> bytes:
    return hmac.new(key, LOGIN_LABEL + b"\x00" + session_id, hashlib.sha256).digest()


class LoginDemo:
    """The WSGI app (wrap it in `SessionIdMiddleware`)."""

    def __init__(self, users: dict[str, str]) -> None:
        self._secret = os.urandom(32)
        self._keys: dict[str, tuple[bytes, bytes]] = {}
        for user, password in users.items():
            salt = os.urandom(SALT_LENGTH)
            self._keys[user] = (salt, password_key(password, salt))
        self.logins: list[str] = []

    def salt_of(self, user: str) -> bytes:
        if user in self._keys:
            return self._keys[user][0]
        return hmac.new(self._secret, user.encode(), hashlib.sha256).digest()[:SALT_LENGTH]

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, text = self._route(environ)
        body = text.encode()
        start_response(status, [("Content-Type", "text/plain"),
                                ("Content-Length", str(len(body)))])
        return [body]

    def _route(self, environ: dict[str, Any]) -> tuple[str, str]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        session_hex = environ.get(ENV_KEY)
        if method == "GET" and path == "/":
            return "200 OK", f"session {session_hex}" if session_hex else "no tcpcrypt"
        if method == "GET" and path == "/salt":
            user = parse_qs(environ.get("QUERY_STRING", "")).get("user", [""])[0]
            return "200 OK", self.salt_of(user).hex()
        if method == "POST" and path == "/login":
            return self._login(environ, session_hex)
        return "404 Not Found", "not found"

    def _login(self, environ: dict[str, Any], session_hex: str | None) -> tuple[str, str]:
        if not session_hex:
            return "403 Forbidden", "login needs a tcpcrypt connection"
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return "400 Bad Request", "bad content length"
        if not 0 < length <= MAX_FORM:
            return "400 Bad Request", "bad form size"
        form = parse_qs(environ["wsgi.input"].read(length).decode("ascii", "replace"))
        user, proof_hex = form.get("user", [""])[0], form.get("proof", [""])[0]
        try:
            proof = bytes.fromhex(proof_hex)
        except ValueError:
            return "400 Bad Request", "proof is not hex"
        stored = self._keys.get(user)
        expected = login_proof(stored[1] if stored else self._secret, bytes.fromhex(session_hex))
        if stored is None or not hmac.compare_digest(proof, expected):
            return "401 Unauthorized", "wrong user, password or session"
        self.logins.append(user)
        return "200 OK", f"welcome {user}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="tcpcrypt session-bound login demo (WSGI)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD")
    args = parser.parse_args(argv)
    users = dict(entry.split(":", 1) for entry in args.user if ":" in entry)
    if len(users) != len(args.user) or not users:
        parser.error("give at least one --user NAME:PASSWORD")
    server = TcpcryptWSGIServer((args.host, args.port), SessionIdMiddleware(LoginDemo(users)))
    print(f"serving on {args.host}:{args.port}")
    server.serve_forever()


if __name__ == "__main__":
    main()
