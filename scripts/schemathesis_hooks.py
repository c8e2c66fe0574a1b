"""Schemathesis hooks for kycd: sign every `/v1` request, add the operator token where needed.

Loaded by `scripts/schemathesis` through `SCHEMATHESIS_HOOKS=<this file>`; written against the
schemathesis version pinned there (4.32.5).

Credentials come from the environment (the runner script sets them):

    KYCD_ST_KEY_ID       tenant API key id (`ak_…`)        -> X-API-KEY
    KYCD_ST_SECRET       its secret (`sk_…`), HMAC key
    KYCD_ST_ADMIN_TOKEN  operator token                     -> Authorization: Bearer … on /admin/v1/*,
                                                               POST /api/v1/iad/config and GET /metrics
    KYCD_ST_TENANT_ID    optional: the test tenant, and
    KYCD_ST_KEY_ID       (above) the test key: operations that would disable them (suspend the
                         tenant, move it to another plan, revoke / rotate / re-scope the key) are
                         pointed at a missing id (404) instead when the generator picks them, so the
                         rest of the run keeps a working credential; tenants and keys the run creates
                         itself are fair game
    KYCD_ST_FACIA_HASH   optional: the key's Facia hash id, put into `hash_id` of JSON object bodies of
                         POST /process_face so that the compat call gets past its credential check

Signing (DESIGN.md §4, README "Signing requests"):

    X-API-SIGN = hex(HMAC-SHA256(secret,
                 timestamp "\n" METHOD "\n" path_with_query "\n" hex(sha256(body)) "\n" nonce))

It has to cover the exact request target and body bytes that go on the wire, after schemathesis
has serialized the case (JSON, multipart with its random boundary, raw strings in negative
tests, query strings with odd characters…). So the signature is not computed from `case`:
a `before_call` hook passes a `requests` auth object in the transport kwargs (schemathesis
merges `kwargs["auth"]` into `requests.Session.request(...)`), and `requests` calls it with the
final `PreparedRequest`, whose `path_url` and `body` are what urllib3 then sends. Because
`requests` prepares the request again on every attempt (schemathesis resends once on a dropped
keep-alive connection, and `--rate-limit auto` retries 429s), each attempt gets its own
timestamp and nonce, so nothing is ever a replay.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from typing import Any

import requests.auth

import schemathesis

try:  # urllib3 re-encodes the request target before writing it; sign what it will write.
    from urllib3.util.url import _encode_target
except ImportError:  # pragma: no cover - other urllib3 versions
    _encode_target = None  # type: ignore[assignment]


def _env(name: str, required: bool = True) -> str:
    value = os.environ.get(name, "")
    if required and not value:
        raise RuntimeError(f"{name} is not set (scripts/schemathesis sets it)")
    return value


KEY_ID = _env("KYCD_ST_KEY_ID")
SECRET = _env("KYCD_ST_SECRET")
ADMIN_TOKEN = _env("KYCD_ST_ADMIN_TOKEN")
FACIA_HASH = _env("KYCD_ST_FACIA_HASH", required=False)
TENANT_ID = _env("KYCD_ST_TENANT_ID", required=False)

# Operator operations that would take the run's own credential away, and the id that replaces ours.
PROTECTED = {
    ("POST", "/admin/v1/tenants/{id}/suspend"): "ten_0000000000000000",
    ("PUT", "/admin/v1/tenants/{id}/plan"): "ten_0000000000000000",
    ("POST", "/admin/v1/keys/{id}/revoke"): "ak_000000000000000000000000",
    ("POST", "/admin/v1/keys/{id}/rotate"): "ak_000000000000000000000000",
    ("PATCH", "/admin/v1/keys/{id}"): "ak_000000000000000000000000",
}

# Operations outside /admin/v1 that need the operator token.
OPERATOR_ROUTES = {("POST", "/api/v1/iad/config"), ("GET", "/metrics")}


def wire_target(prepared: requests.PreparedRequest) -> str:
    """The request target (path and query) exactly as urllib3 writes it on the request line."""
    target = prepared.path_url
    if _encode_target is not None and target.startswith("/"):
        target = _encode_target(target)
    return target


def wire_body(prepared: requests.PreparedRequest) -> bytes:
    """The body bytes as sent; normalises `prepared.body` to `bytes` so that nothing re-encodes it."""
    body = prepared.body
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray):
        data = bytes(body)
    elif isinstance(body, str):
        # urllib3 2.x encodes a `str` body as UTF-8; make that explicit so the hash is of the same bytes.
        data = body.encode("utf-8")
    elif hasattr(body, "read"):
        data = body.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
    else:  # an iterable of chunks (would otherwise go out chunked)
        data = b"".join(c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in body)
    prepared.body = data
    prepared.headers.pop("Transfer-Encoding", None)
    prepared.headers["Content-Length"] = str(len(data))
    return data


def canonical(timestamp: str, method: str, target: str, body: bytes, nonce: str) -> bytes:
    lines = [timestamp, method, target, hashlib.sha256(body).hexdigest(), nonce]
    return "\n".join(lines).encode("utf-8")


def is_v1(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def is_operator(method: str, path: str) -> bool:
    return path == "/admin/v1" or path.startswith("/admin/v1/") or (method, path) in OPERATOR_ROUTES


class KycdAuth(requests.auth.AuthBase):
    """Signs `/v1/*` and adds the operator bearer token, on the final prepared request."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        method = (r.method or "GET").upper()
        target = wire_target(r)
        path = target.split("?", 1)[0]
        if is_v1(path):
            body = wire_body(r)
            timestamp = str(int(time.time()))
            nonce = secrets.token_hex(16)  # 32 chars, fresh for every attempt
            sign = hmac.new(
                SECRET.encode("utf-8"),
                canonical(timestamp, method, target, body, nonce),
                hashlib.sha256,
            ).hexdigest()
            # Replace whatever schemathesis generated for the security schemes.
            for name in list(r.headers):
                if name.lower() in ("x-api-key", "x-api-timestamp", "x-api-sign", "x-api-nonce"):
                    del r.headers[name]
            r.headers["X-API-KEY"] = KEY_ID
            r.headers["X-API-TIMESTAMP"] = timestamp
            r.headers["X-API-NONCE"] = nonce
            r.headers["X-API-SIGN"] = sign
        elif is_operator(method, path):
            r.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        return r


AUTH = KycdAuth()


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    kwargs["auth"] = AUTH
    method, template = case.operation.method.upper(), case.operation.path
    replacement = PROTECTED.get((method, template))
    params = case.path_parameters
    if replacement and isinstance(params, dict) and params.get("id") in {TENANT_ID, KEY_ID} - {""}:
        params["id"] = replacement
    if (
        FACIA_HASH
        and (method, template) == ("POST", "/process_face")
        and isinstance(case.body, dict)
    ):
        case.body["hash_id"] = FACIA_HASH
