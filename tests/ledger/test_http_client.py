"""The HTTP server (signed requests, envelope errors, OpenAPI) and the terminal client
(timeouts and the reversal rule), on both back ends."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from ledger.auth import TEST_SECRET, sign_headers, terminal_key
from ledger.client import HostClient, LocalTransport
from ledger.errors import Refused, Unavailable
from ledger.http import PATH, create_app
from ledger.service import HostService
from tests.ledger.helpers import AMOXICILLIN, PHARMACY, Holder, World, balances, envelope, verify

PAASID = f"{PHARMACY}-01"


class Server:
    def __init__(self, host: HostService) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = create_app(host, secret=TEST_SECRET)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="error", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def server(host: HostService) -> Iterator[Server]:
    with Server(host) as s:
        yield s


@pytest.fixture
def world(host: HostService) -> World:
    return World(host)


def _post(server: Server, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(server.url + PATH, content=body, headers=headers or {}, timeout=10)


def _signed(body: bytes, paasid: str = PAASID, key: bytes | None = None) -> dict[str, str]:
    return sign_headers(key or terminal_key(TEST_SECRET, paasid), paasid, body)


def test_settlement_over_http(server: Server, world: World) -> None:
    h = world.person()
    with HostClient.connect(server.url, fixmedins_code=PHARMACY, terminal_id="01") as c:
        who = c.person_by_card(h.card_no, h.card_sn)
        assert who["baseinfo"]["psn_no"] == h.psn_no
        info = c.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                        lines=world.lines((AMOXICILLIN, 2, 1250)))["setlinfo"]
        assert info["balc"] == "475.00"
        c.cancel(info["setl_id"], info["mdtrt_id"], h.psn_no)
        with pytest.raises(Refused, match="already cancelled"):
            c.cancel(info["setl_id"], info["mdtrt_id"], h.psn_no)


def test_signing_is_enforced(server: Server, world: World) -> None:
    h = world.person()
    c = HostClient.connect(server.url, fixmedins_code=PHARMACY)
    body = json.dumps(envelope(PHARMACY, "1101", {"data": {
        "mdtrt_cert_type": "03", "mdtrt_cert_no": h.card_no, "card_sn": h.card_sn}},
        sign_no=c.sign_no)).encode()
    cases = [
        ({}, "unsigned request"),
        (_signed(body, key=b"k" * 32), "bad signature"),
        ({**_signed(body), "x-tif-timestamp": str(int(time.time()) - 3600)}, "away from"),
        (_signed(body, paasid="P37080000002-01"), "may not send requests for institution"),
    ]
    for headers, message in cases:
        r = _post(server, body, headers)
        assert r.status_code == 200 and r.json()["infcode"] == -1
        assert message in r.json()["err_msg"], r.json()
    good = _signed(body)
    assert _post(server, body, good).json()["infcode"] == 0
    replay = _post(server, body, good).json()
    assert replay["infcode"] == -1 and "replayed request" in replay["err_msg"]
    tampered = body.replace(b"1101", b"5206", 1)
    assert "bad signature" in _post(server, tampered, _signed(body)).json()["err_msg"]
    c.close()
    r = _post(server, body, _signed(body)).json()
    assert r["infcode"] == -1 and "signed out" in r["err_msg"]


@pytest.mark.parametrize("body, message", [
    (b"{oops", "not valid JSON"),
    (b'{"infno": "2102"}', "request.msgid is missing"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_bad_bodies_get_infcode_minus_one(server: Server, body: bytes, message: str) -> None:
    r = _post(server, body, _signed(body))
    assert r.status_code == 200
    assert r.json()["infcode"] == -1 and message in r.json()["err_msg"]


def test_openapi_and_wrong_paths(server: Server) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    assert PATH in spec["paths"]
    schemas = spec["components"]["schemas"]
    assert {"Envelope", "Input2102", "Input1101", "Input8105"} <= set(schemas)
    r = httpx.get(server.url + PATH)
    assert r.status_code == 405 and r.json()["infcode"] == -1


class LosesAnswers:
    """A transport whose first ``n`` answers are lost after the host applied the request;
    with ``down`` set, requests do not reach the host at all."""

    def __init__(self, host: HostService, n: int = 1) -> None:
        self.inner = LocalTransport(host)
        self.lose = n
        self.down = False
        self.sent: list[str] = []

    def send(self, env: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.down:
            raise Unavailable("connection refused")
        self.sent.append(env["infno"])
        answer = self.inner.send(env, timeout)
        if self.lose > 0:
            self.lose -= 1
            raise Unavailable(f"no answer from the host within {timeout:g} s")
        return answer

    def close(self) -> None:
        pass


def _client(host: HostService, transport: Any) -> HostClient:
    c = HostClient(transport, fixmedins_code=PHARMACY, sign_in=False)
    c.sign_in()
    return c


def test_lost_answer_is_reversed_before_moving_on(host: HostService, world: World) -> None:
    h = world.person()
    t = LosesAnswers(host, n=0)
    c = _client(host, t)
    t.lose = 1
    with pytest.raises(Unavailable, match=r"was reversed \(2601\): nothing was charged"):
        c.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                 lines=world.lines((AMOXICILLIN, 2, 1250)))
    assert t.sent[-2:] == ["2102", "2601"]
    assert balances(host)[f"medical:{h.psn_no}"] == 50_000
    assert verify(host) == []


def test_pending_reversal_is_sent_before_the_next_request(host: HostService,
                                                          world: World) -> None:
    h: Holder = world.person()
    t = LosesAnswers(host, n=0)
    c = _client(host, t)
    t.lose = 1

    real_send = t.send

    def send_then_go_down(env: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            return real_send(env, timeout)
        finally:
            if env["infno"] == "2102":
                t.down = True
    t.send = send_then_go_down  # type: ignore[method-assign]
    with pytest.raises(Unavailable, match=r"reversal .*pending"):
        c.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                 lines=world.lines((AMOXICILLIN, 2, 1250)))
    assert len(c.pending_reversals) == 1
    assert balances(host)[f"medical:{h.psn_no}"] == 47_500   # applied, answer lost
    with pytest.raises(Unavailable):
        c.person_by_card(h.card_no, h.card_sn)                 # host still away
    t.down = False
    who = c.person_by_card(h.card_no, h.card_sn)               # reversal goes first
    assert c.pending_reversals == []
    assert who["insuinfo"][0]["balc"] == "500.00"
    assert t.sent[-2:] == ["2601", "1101"]


def test_http_timeout_triggers_reversal(host: HostService, world: World) -> None:
    h = world.person()
    real = host.call
    slow = {"n": 1}

    def delayed(request: Any, **kw: Any) -> dict[str, Any]:
        answer = real(request, **kw)
        body = json.loads(request)
        if body.get("infno") == "2102" and slow["n"]:
            slow["n"] -= 1
            time.sleep(1.5)
        return answer
    host.call = delayed  # type: ignore[method-assign]
    with Server(host) as s:
        c = HostClient.connect(s.url, fixmedins_code=PHARMACY, timeout=0.5)
        with pytest.raises(Unavailable, match="reversed"):
            c.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                     lines=world.lines((AMOXICILLIN, 2, 1250)))
        assert balances(host)[f"medical:{h.psn_no}"] == 50_000
        c.timeout = 5
        c.close()
    assert verify(host) == []


def test_client_renews_a_msgid_another_terminal_used(host: HostService, world: World) -> None:
    h = world.person()
    a = _client(host, LocalTransport(host))
    b = _client(host, LocalTransport(host))
    from tests.ledger.helpers import msgid
    same = msgid(PHARMACY)
    ids = iter([same, same, msgid(PHARMACY)])
    a.new_msgid = b.new_msgid = lambda: next(ids)  # type: ignore[method-assign]
    kw = dict(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn)
    first = a.settle(lines=world.lines((AMOXICILLIN, 1, 1250)), **kw)["setlinfo"]
    second = b.settle(lines=world.lines((AMOXICILLIN, 2, 1250)), **kw)["setlinfo"]
    assert first["setl_id"] != second["setl_id"]
    assert balances(host)[f"medical:{h.psn_no}"] == 50_000 - 3750
