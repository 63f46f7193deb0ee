"""Conversions at the edge: CheckRequest → :class:`AuthInput`, :class:`Decision` → CheckResponse.

The only module besides ``server`` that knows Envoy's protobufs (xds-protos, upb-backed).
"""

from __future__ import annotations

import json

from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from sidecar.pipeline import AuthInput, Decision
from sidecar.tiers import (
    COOKIE_TELEMETRY,
    HDR_CLUSTER,
    HDR_DECISION,
    HDR_SCORE,
    HDR_TELEMETRY,
    HDR_TIER,
    JWT_AUTHN_NAMESPACE,
)

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_COOKIE_PREFIX = COOKIE_TELEMETRY + "="
_OK_STATUS = status_pb2.Status(code=code_pb2.OK)
_DENY_CODES = {400: http_status_pb2.BadRequest, 403: http_status_pb2.Forbidden}


def _cookie_value(cookie_header: str) -> str | None:
    for part in cookie_header.split(";"):
        part = part.strip()
        if part.startswith(_COOKIE_PREFIX):
            return part[len(_COOKIE_PREFIX):]
    return None


def _jwt_identity(req: authz.CheckRequest, payload_key: str, claim: str) -> str | None:
    fm = req.attributes.metadata_context.filter_metadata
    if JWT_AUTHN_NAMESPACE not in fm:
        return None
    payload = fm[JWT_AUTHN_NAMESPACE].fields.get(payload_key)
    if payload is None or not payload.HasField("struct_value"):
        return None
    value = payload.struct_value.fields.get(claim)
    if value is None or not value.HasField("string_value") or not value.string_value:
        return None
    claim_value: str = value.string_value
    return claim_value


def to_input(req: authz.CheckRequest, *, identity_header: str, jwt_payload_key: str,
             jwt_claim: str) -> AuthInput:
    """Identity: the JWT claim (verified by Envoy's jwt_authn) first, else the header."""
    http = req.attributes.request.http
    headers = http.headers
    user = _jwt_identity(req, jwt_payload_key, jwt_claim)
    if user is None and identity_header:
        user = headers.get(identity_header) or None
        if user is not None:
            user = user.strip() or None
    telemetry = headers.get(HDR_TELEMETRY)
    source: str | None = "header" if telemetry is not None else None
    if telemetry is None:
        cookie = headers.get("cookie")
        if cookie:
            telemetry = _cookie_value(cookie)
            source = "cookie" if telemetry is not None else None
    return AuthInput(user_id=user, telemetry=telemetry, telemetry_source=source,
                     request_id=headers.get("x-request-id") or None,
                     method=http.method, path=http.path)


def _hv(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value),
                                      append_action=_OVERWRITE)


def _metadata(d: Decision) -> struct_pb2.Struct:
    md = struct_pb2.Struct()
    f = md.fields  # field by field: measured 2.5 µs vs 5.8 µs for Struct.update
    f["tier"].number_value = d.tier
    f["reason"].string_value = d.reason.value
    f["decision"].string_value = d.decision_id
    f["cluster"].string_value = d.cluster
    if d.score is not None:
        f["score"].number_value = round(d.score, 3)
    if d.detail:
        f["detail"].string_value = d.detail
    return md


def to_response(d: Decision) -> authz.CheckResponse:
    score = f"{d.score:.3f}" if d.score is not None else ""
    if d.deny_status is not None:
        body = json.dumps({"error": "request refused by behavioural policy",
                           "reason": d.reason.value, "decision": d.decision_id})
        return authz.CheckResponse(
            status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED),
            denied_response=authz.DeniedHttpResponse(
                status=http_status_pb2.HttpStatus(code=_DENY_CODES[d.deny_status]),
                headers=[_hv(HDR_DECISION, d.decision_id),
                         _hv("content-type", "application/json")],
                body=body),
            dynamic_metadata=_metadata(d))
    headers = [_hv(HDR_CLUSTER, d.cluster), _hv(HDR_TIER, str(d.tier)),
               _hv(HDR_DECISION, d.decision_id)]
    if score:
        headers.append(_hv(HDR_SCORE, score))
    ok = authz.OkHttpResponse(headers=headers,
                              headers_to_remove=[HDR_TELEMETRY] if d.remove_telemetry_header
                              else [])
    return authz.CheckResponse(status=_OK_STATUS, ok_response=ok, dynamic_metadata=_metadata(d))
