"""Conversions at the edge: CheckRequest → AuthInput and Decision → CheckResponse."""

from __future__ import annotations

import json

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as authz
from google.protobuf import struct_pb2

from sidecar.envoy_io import to_input, to_response
from sidecar.pipeline import Decision
from sidecar.reasons import Reason
from sidecar.tiers import JWT_AUTHN_NAMESPACE


def make_request(headers: dict[str, str], jwt: dict[str, object] | None = None
                 ) -> authz.CheckRequest:
    req = authz.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path = "GET", "/x"
    for k, v in headers.items():
        http.headers[k] = v
    if jwt is not None:
        s = struct_pb2.Struct()
        s.update({"jwt_payload": jwt})
        req.attributes.metadata_context.filter_metadata[JWT_AUTHN_NAMESPACE].CopyFrom(s)
    return req


def convert(req: authz.CheckRequest):  # type: ignore[no-untyped-def]
    return to_input(req, identity_header="x-user-id", jwt_payload_key="jwt_payload",
                    jwt_claim="sub")


@pytest.mark.parametrize(("headers", "jwt", "user", "telemetry", "source"), [
    ({"x-user-id": "alice", "x-bioshard-telemetry": "1z.A"}, None, "alice", "1z.A", "header"),
    ({"x-user-id": "alice", "x-bioshard-telemetry": "1z.A"}, {"sub": "bob"}, "bob", "1z.A",
     "header"),
    ({"cookie": "a=1; __bsh=1j.B; z=2"}, None, None, "1j.B", "cookie"),
    ({"cookie": "a=1", "x-user-id": "  "}, None, None, None, None),
    ({"x-bioshard-telemetry": "1z.H", "cookie": "__bsh=1z.C"}, {"sub": 7}, None, "1z.H",
     "header"),
], ids=["header-identity", "jwt-wins", "cookie", "blank-identity", "header-over-cookie"])
def test_to_input(headers: dict[str, str], jwt: dict[str, object] | None, user: str | None,
                  telemetry: str | None, source: str | None) -> None:
    """Identity from the verified JWT first, then the header; telemetry header before cookie."""
    inp = convert(make_request(headers, jwt))
    assert (inp.user_id, inp.telemetry, inp.telemetry_source) == (user, telemetry, source)


def test_ok_response() -> None:
    """OK: the four decision headers overwrite, telemetry is removed, metadata is set."""
    d = Decision(decision_id="req-1", tier=2, cluster="tier2", reason=Reason.OK, score=0.51234,
                 remove_telemetry_header=True)
    r = to_response(d)
    assert r.status.code == 0
    hdrs = {h.header.key: h.header.value for h in r.ok_response.headers}
    assert hdrs == {"x-bioshard-cluster": "tier2", "x-bioshard-tier": "2",
                    "x-bioshard-decision": "req-1", "x-bioshard-score": "0.512"}
    assert all(h.append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
               for h in r.ok_response.headers)
    assert list(r.ok_response.headers_to_remove) == ["x-bioshard-telemetry"]
    md = r.dynamic_metadata.fields
    assert md["reason"].string_value == "ok"
    assert md["tier"].number_value == 2
    assert md["decision"].string_value == "req-1"


@pytest.mark.parametrize(("status", "reason"), [(403, Reason.SCRIPTED_INPUT),
                                                (400, Reason.BAD_TELEMETRY)],
                         ids=["forbidden", "bad-request"])
def test_denied_response(status: int, reason: Reason) -> None:
    """A deny decision answers the configured status with a JSON body naming the reason."""
    d = Decision(decision_id="d1", tier=3, cluster="tier3", reason=reason, score=None,
                 deny_status=status)
    r = to_response(d)
    assert r.status.code == 7
    assert r.denied_response.status.code == status
    body = json.loads(r.denied_response.body)
    assert body["reason"] == reason.value and body["decision"] == "d1"
