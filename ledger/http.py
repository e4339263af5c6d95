"""The host's HTTP server (spec/host.md §1): ``POST /fsi/api/rsfComIfsService/callService``.

FastAPI application; the OpenAPI description (``/openapi.json``, ``/docs``) carries the
envelope and every transaction code's input model. As on the national platform, every
answer is HTTP 200 with the JSON envelope: a bad request — malformed JSON, unsigned or
badly signed, replayed, unknown infno, wrong field — gets ``infcode -1`` and a precise
``err_msg``, never a 500 and never a traceback.

Signing: see :mod:`ledger.auth`. Nonces are recorded (per terminal) before the request is
handled, so a replayed request is refused even when the first one failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.auth import WINDOW, check_headers, load_secret
from ledger.errors import AuthError, HostError
from ledger.registry import OPS
from ledger.schemas import Envelope, ResponseEnvelope
from ledger.service import HostService
from ledger.store.base import Tx

PATH = "/fsi/api/rsfComIfsService/callService"
log = logging.getLogger("sscard.host.http")


def _fail(message: str, code: str, msgid: str = "") -> JSONResponse:
    t = time.strftime("%Y-%m-%d %H:%M:%S")
    return JSONResponse({"infcode": -1, "inf_refmsgid": msgid, "refmsg_time": t,
                         "respond_time": t, "err_msg": message, "err_code": code,
                         "warn_msg": "", "output": {}})


def create_app(service: HostService, *, secret: bytes, require_signature: bool = True) -> FastAPI:
    """The ASGI application around ``service``."""
    app = FastAPI(title="sscard host", version="1",
                  description="NHSA-shaped settlement interface of the sscard host "
                              "(spec/host.md). Every answer is HTTP 200 with the envelope.")
    counter = {"n": 0}

    def record_nonce(paasid: str, nonce: str, ts: int) -> None:
        def work(tx: Tx) -> int:
            counter["n"] += 1
            if counter["n"] % 1000 == 0:
                tx.execute("DELETE FROM nonces WHERE ts < ?", (int(time.time()) - 2 * WINDOW,))
            return tx.execute("INSERT INTO nonces (paasid, nonce, ts) VALUES (?, ?, ?) "
                              "ON CONFLICT (paasid, nonce) DO NOTHING", (paasid, nonce, ts))
        if service.store.run(work) != 1:
            raise AuthError("replayed request: this nonce was already used by the terminal")

    @app.post(PATH, response_model=ResponseEnvelope, summary="callService",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}}})
    async def call_service(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            paasid = None
            if require_signature:
                headers = {k.lower(): v for k, v in request.headers.items()}
                paasid, nonce, ts = check_headers(secret, headers, body)
                await run_in_threadpool(record_nonce, paasid, nonce, ts)
            answer = await run_in_threadpool(service.call, body, paasid=paasid)
        except HostError as exc:
            return _fail(exc.message, exc.code)
        return JSONResponse(answer)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _fail(f"bad request: {exc.errors()[:3]}", "bad_request")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        resp = _fail(f"{request.method} {request.url.path}: {exc.detail}; the service is "
                     f"POST {PATH}", "bad_request")
        resp.status_code = exc.status_code
        return resp

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception("internal error %s", ref)
        return _fail(f"internal error (reference {ref}): nothing was written", "internal")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        tmpl = "#/components/schemas/{model}"
        models: dict[str, Any] = {"Envelope": Envelope}
        for code, op in sorted(OPS.items()):
            models[f"Input{code}"] = op.model
        for name, model in models.items():
            js = model.model_json_schema(ref_template=tmpl)
            for k, v in js.pop("$defs", {}).items():
                comps.setdefault(k, v)
            if name.startswith("Input"):
                js["description"] = f"input of infno {name[5:]}: {OPS[name[5:]].name}"
            comps[name] = js
        app.openapi_schema = jsonable_encoder(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def serve(url: str, host: str, port: int, *, secret: bytes, log_level: str = "warning",
          workers: int = 1, secret_file: str | None = None) -> None:
    """Run the server until interrupted (``sscard host serve``).

    With ``workers`` > 1, that many server processes share the listening socket (uvicorn's
    supervisor restarts one that dies); each opens the host on ``url`` itself and reads the
    secret from ``secret_file`` (or ``$SSCARD_HOST_SECRET_FILE``; the TEST secret without
    either). Sign-ins, nonces and msgids live in the database, so any process may answer
    any request of a terminal."""
    import uvicorn
    if workers > 1:
        os.environ[_DB_ENV] = url
        if secret_file:
            os.environ["SSCARD_HOST_SECRET_FILE"] = os.path.abspath(secret_file)
        uvicorn.run("ledger.http:worker_app", factory=True, workers=workers, host=host,
                    port=port, log_level=log_level, access_log=False)
        return
    service = HostService.open(url)
    app = create_app(service, secret=secret)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        service.close()


_DB_ENV = "SSCARD_HOST_WORKER_DB"


def worker_app() -> FastAPI:
    """The application of one of several server processes (:func:`serve` with ``workers``):
    the host on ``$SSCARD_HOST_WORKER_DB``, closed when the process stops."""
    service = HostService.open(os.environ[_DB_ENV])
    app = create_app(service, secret=load_secret())

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()
    app.router.lifespan_context = lifespan
    return app
