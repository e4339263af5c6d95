"""Request signing between terminals and the host (spec/host.md §1, gateway headers).

Every HTTP request carries::

    x-tif-paasid     the terminal's id: <fixmedins_code>-<terminal no>, e.g. P37080000001-01
    x-tif-timestamp  Unix seconds
    x-tif-nonce      a fresh random value (hex)
    x-tif-signature  hex HMAC-SHA256(terminal key, timestamp ‖ "\\n" ‖ nonce ‖ "\\n" ‖
                     hex SHA-256(body))

The terminal key is never stored: the host derives it from its secret and the paasid,
``HMAC-SHA256(host secret, "sscard terminal key|" ‖ paasid)``, and hands it to the terminal
once at installation (``sscard host terminal-key``). A request older or newer than
:data:`WINDOW` seconds, or reusing a nonce, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from ledger.errors import AuthError, BadRequest

WINDOW = 300
TEST_SECRET = b"sscard TEST host secret - never use in production"
"""The host secret used when none is configured: a TEST value, public."""


def load_secret(path: str | None = None) -> bytes:
    """The host secret: ``path``, else ``$SSCARD_HOST_SECRET_FILE``, else the TEST secret."""
    p = path or os.environ.get("SSCARD_HOST_SECRET_FILE")
    if not p:
        return TEST_SECRET
    try:
        data = Path(p).read_bytes().strip()
    except OSError as exc:
        raise BadRequest(f"cannot read the host secret {p}: {exc.strerror}") from None
    if len(data) < 16:
        raise BadRequest(f"the host secret in {p} is shorter than 16 bytes")
    return data


def terminal_key(secret: bytes, paasid: str) -> bytes:
    """The signing key of terminal ``paasid``."""
    return hmac.new(secret, b"sscard terminal key|" + paasid.encode(), hashlib.sha256).digest()


def signature(key: bytes, timestamp: str, nonce: str, body: bytes) -> str:
    msg = f"{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def sign_headers(key: bytes, paasid: str, body: bytes,
                 now: float | None = None) -> dict[str, str]:
    """The four gateway headers for ``body``."""
    ts = str(int(now if now is not None else time.time()))
    nonce = secrets.token_hex(16)
    return {"x-tif-paasid": paasid, "x-tif-timestamp": ts, "x-tif-nonce": nonce,
            "x-tif-signature": signature(key, ts, nonce, body)}


def check_headers(secret: bytes, headers: dict[str, str], body: bytes,
                  now: float | None = None) -> tuple[str, str, int]:
    """Verify the signature headers; return (paasid, nonce, timestamp).

    Raises :class:`AuthError` with a precise reason (the nonce is checked by the caller,
    against its store).
    """
    missing = [h for h in ("x-tif-paasid", "x-tif-timestamp", "x-tif-nonce",
                           "x-tif-signature") if not headers.get(h)]
    if missing:
        raise AuthError(f"unsigned request: header {', '.join(missing)} missing; terminals "
                        "sign every request with their terminal key")
    paasid, ts, nonce = headers["x-tif-paasid"], headers["x-tif-timestamp"], \
        headers["x-tif-nonce"]
    if not ts.isdigit():
        raise AuthError("x-tif-timestamp must be Unix seconds")
    if len(nonce) < 8 or len(nonce) > 64:
        raise AuthError("x-tif-nonce must be 8 to 64 characters")
    t = int(ts)
    current = int(now if now is not None else time.time())
    if abs(current - t) > WINDOW:
        raise AuthError(f"x-tif-timestamp is {current - t} s away from the host's clock "
                        f"(allowed ±{WINDOW} s): check the terminal's clock")
    want = signature(terminal_key(secret, paasid), ts, nonce, body)
    if not hmac.compare_digest(want, headers["x-tif-signature"].lower()):
        raise AuthError("bad signature: the request was not signed with this terminal's key "
                        "or was altered on the way")
    return paasid, nonce, t
