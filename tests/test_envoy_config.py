"""Tests for sidecar.envoy_config: rendered configs, their validation by Envoy, the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar import envoy_config as ec
from sidecar.devcerts import make_self_signed
from sidecar.tiers import (
    DEFAULT_TIERS,
    EXT_AUTHZ_NAMESPACE,
    HDR_CHALLENGE,
    HDR_CLUSTER,
    HDR_TIER,
    JWT_AUTHN_NAMESPACE,
    ROUTING_HEADERS,
    TierSpec,
)

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "envoy" / "bioshard.yaml"
COMPOSE_CERT_DIR = "/etc/bioshard/certs/"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    cert, key = make_self_signed(tmp_path_factory.mktemp("certs"))
    return str(cert), str(key)


def _hcm(config: dict[str, Any], listener: int = 0) -> dict[str, Any]:
    chain = config["static_resources"]["listeners"][listener]["filter_chains"][0]
    hcm: dict[str, Any] = chain["filters"][0]["typed_config"]
    return hcm


def _routes(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    vhost = _hcm(config)["route_config"]["virtual_hosts"][0]
    return {route["name"]: route for route in vhost["routes"]}


def _clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


# ------------------------------------------------------------------ Envoy accepts the output


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"tier1": ec.parse_endpoints("127.0.0.1:8001", "127.0.0.1:8002", "[::1]:8003"),
         "tier3": ec.parse_endpoints("10.0.0.7:80", "10.0.0.8:80")},
        {"sidecar": ec.HostPort("sidecar.internal", 9001),
         "tier2": ec.parse_endpoints("tier2-a:8080", "tier2-b:8080")},
        {"failure_mode_allow": False, "rate_limit_per_s": 5, "ext_authz_timeout_ms": 1000},
    ],
    ids=["plain", "several-ip-endpoints", "dns-names", "fail-closed-custom-limits"],
)
def test_rendered_config_passes_envoy_validate(changes: dict[str, Any]) -> None:
    """Rendered configs (plain, several endpoints, DNS names, options) pass envoy validate."""
    opts = dataclasses.replace(ec.RenderOptions(), **changes)
    ec.validate(ec.to_yaml(ec.render(opts)))


def test_tls_config_passes_envoy_validate(certs: tuple[str, str]) -> None:
    """A config with the TLS listener validates, in YAML and in JSON."""
    cert, key = certs
    opts = ec.RenderOptions(https_port=10443, cert_path=cert, key_path=key)
    config = ec.render(opts)
    ec.validate(ec.to_yaml(config))
    ec.validate(ec.to_json(config))


def test_validate_raises_with_envoys_message(tmp_path: Path) -> None:
    """Envoy's own reason is in the error when it rejects a config (a missing key file here)."""
    opts = ec.RenderOptions(
        https_port=10443, cert_path=str(tmp_path / "no.crt"), key_path=str(tmp_path / "no.key")
    )
    path = tmp_path / "bad.yaml"
    path.write_text(ec.to_yaml(ec.render(opts)))
    with pytest.raises(ec.EnvoyConfigError, match=r"no\.(crt|key)"):
        ec.validate(path)


# ------------------------------------------------------------------ the committed file


def test_committed_yaml_equals_rendered_compose_defaults() -> None:
    """envoy/bioshard.yaml is exactly render(compose_defaults()) (comments and anchors aside)."""
    assert yaml.safe_load(COMMITTED.read_text()) == ec.render(ec.compose_defaults())


def test_committed_yaml_passes_envoy_validate(certs: tuple[str, str], tmp_path: Path) -> None:
    """The committed file, as Envoy reads it, validates (compose names are not resolved)."""
    cert, key = certs
    text = COMMITTED.read_text()
    assert text.count(COMPOSE_CERT_DIR) == 2
    text = text.replace(COMPOSE_CERT_DIR + "tls.crt", cert)
    text = text.replace(COMPOSE_CERT_DIR + "tls.key", key)
    path = tmp_path / "bioshard.yaml"
    path.write_text(text)
    ec.validate(str(path))  # a path given as a string


# ------------------------------------------------------------------ what the config says


def test_client_routing_headers_are_stripped_before_routing() -> None:
    """Every routing header is removed by early header mutation, on every listener."""
    config = ec.render(ec.compose_defaults())
    for listener in (0, 1):
        (ext,) = _hcm(config, listener)["early_header_mutation_extensions"]
        removed = [m["remove"] for m in ext["typed_config"]["mutations"]]
        assert removed == list(ROUTING_HEADERS)
    assert {HDR_CLUSTER, HDR_TIER, HDR_CHALLENGE, "x-envoy-auth-failure-mode-allowed"} <= set(
        ROUTING_HEADERS
    )


def test_http_filter_order_and_ext_authz_settings() -> None:
    """ext_authz → local rate limit → router; ext_authz fails open, clears the route cache."""
    hcm = _hcm(ec.render(ec.RenderOptions()))
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == [EXT_AUTHZ_NAMESPACE, ec.LOCAL_RATELIMIT_FILTER, ec.ROUTER_FILTER]
    authz = hcm["http_filters"][0]["typed_config"]
    assert authz["grpc_service"] == {
        "envoy_grpc": {"cluster_name": ec.SIDECAR_CLUSTER}, "timeout": "0.250s"
    }
    assert authz["transport_api_version"] == "V3"
    assert authz["failure_mode_allow"] is True
    assert authz["failure_mode_allow_header_add"] is True
    assert authz["clear_route_cache"] is True
    assert authz["metadata_context_namespaces"] == [JWT_AUTHN_NAMESPACE]
    assert authz.get("include_peer_certificate", False) is False


def test_routes_follow_the_tier_table() -> None:
    """Tier routes use cluster_header; tier 2 has challenge + limit; tier 3 mirrors to ids."""
    routes = _routes(ec.render(ec.RenderOptions()))
    assert list(routes) == ["tier1", "tier2", "tier3", "no_decision"]
    for tier in (1, 2, 3):
        route = routes[f"tier{tier}"]
        assert route["match"]["headers"] == [
            {"name": HDR_TIER, "string_match": {"exact": str(tier)}}
        ]
        assert route["route"]["cluster_header"] == HDR_CLUSTER
    assert "typed_per_filter_config" not in routes["tier1"]
    assert "request_headers_to_add" not in routes["tier1"]
    limit = routes["tier2"]["typed_per_filter_config"][ec.LOCAL_RATELIMIT_FILTER]
    assert limit["token_bucket"]["max_tokens"] == DEFAULT_TIERS[2].rate_limit_per_s
    assert routes["tier2"]["request_headers_to_add"][0]["header"] == {
        "key": HDR_CHALLENGE, "value": "required"
    }
    (mirror,) = routes["tier3"]["route"]["request_mirror_policies"]
    assert mirror["cluster"] == "ids"
    assert mirror["runtime_fraction"]["default_value"] == {"numerator": 100}


def test_default_route_is_the_guarded_tier() -> None:
    """A request without a decision goes to the tier-2 cluster with tier 2's limit and challenge."""
    routes = _routes(ec.render(ec.RenderOptions(rate_limit_per_s=7)))
    default = routes["no_decision"]
    assert default["match"] == {"prefix": "/"}
    assert default["route"]["cluster"] == DEFAULT_TIERS[2].cluster
    assert default["typed_per_filter_config"] == routes["tier2"]["typed_per_filter_config"]
    assert default["request_headers_to_add"] == routes["tier2"]["request_headers_to_add"]
    bucket = default["typed_per_filter_config"][ec.LOCAL_RATELIMIT_FILTER]["token_bucket"]
    assert bucket == {"max_tokens": 7, "tokens_per_fill": 7, "fill_interval": "1s"}


def test_custom_tier_table_renames_clusters() -> None:
    """Cluster names and the mirror target come from the tiers table."""
    tiers = {
        1: TierSpec(1, "fast"),
        2: TierSpec(2, "guarded", challenge=True, rate_limit_per_s=9),
        3: TierSpec(3, "sandbox", mirror_cluster="watcher"),
    }
    config = ec.render(ec.RenderOptions(tiers=tiers))
    assert set(_clusters(config)) == {ec.SIDECAR_CLUSTER, "fast", "guarded", "sandbox", "watcher"}
    assert _routes(config)["no_decision"]["route"]["cluster"] == "guarded"


def test_tls_listener_is_tls13_only(certs: tuple[str, str]) -> None:
    """The TLS listener pins minimum and maximum to TLS 1.3 and shares the plain routes."""
    cert, key = certs
    config = ec.render(ec.RenderOptions(https_port=10443, cert_path=cert, key_path=key))
    listener = config["static_resources"]["listeners"][1]
    assert listener["name"] == "https"
    tls = listener["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["common_tls_context"]["tls_params"] == {
        "tls_minimum_protocol_version": "TLSv1_3",
        "tls_maximum_protocol_version": "TLSv1_3",
    }
    assert _hcm(config, 1)["route_config"] == _hcm(config, 0)["route_config"]


def test_clusters_types_and_sidecar_http2() -> None:
    """IP endpoints → STATIC, names → STRICT_DNS; only the sidecar cluster speaks HTTP/2."""
    opts = ec.RenderOptions(
        sidecar=ec.HostPort("sidecar", 9001), tier1=ec.parse_endpoints("127.0.0.1:1", "127.0.0.2:1")
    )
    clusters = _clusters(ec.render(opts))
    assert clusters[ec.SIDECAR_CLUSTER]["type"] == "STRICT_DNS"
    assert "http2_protocol_options" in json.dumps(clusters[ec.SIDECAR_CLUSTER])
    assert clusters["tier1"]["type"] == "STATIC"
    assert len(clusters["tier1"]["load_assignment"]["endpoints"][0]["lb_endpoints"]) == 2
    assert "typed_extension_protocol_options" not in clusters["tier1"]


def test_admin_binds_loopback_and_access_log_has_decision_fields() -> None:
    """Admin listens on 127.0.0.1; the access log carries tier/reason/decision and the cluster."""
    config = ec.render(ec.RenderOptions(listen_host="0.0.0.0"))
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    log = _hcm(config)["access_log"][0]["typed_config"]["log_format"]["json_format"]
    for key in ("tier", "reason", "decision"):
        assert log[key] == f"%DYNAMIC_METADATA({EXT_AUTHZ_NAMESPACE}:{key})%"
    assert log["upstream_cluster"] == "%UPSTREAM_CLUSTER%"
    assert "telemetry" not in json.dumps(log).lower()


# ------------------------------------------------------------------ options are validated


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"http_port": 0}, "http_port"),
        ({"admin_port": 70000}, "admin_port"),
        ({"https_port": 10443}, "cert_path"),
        ({"cert_path": "/x.crt", "key_path": "/x.key"}, "https_port"),
        ({"admin_port": 10000}, "admin_port"),
        ({"ext_authz_timeout_ms": 0}, "ext_authz_timeout_ms"),
        ({"ext_authz_timeout_ms": 100}, "sidecar_deadline_ms"),
        ({"ext_authz_timeout_ms": 60_000}, "ext_authz_timeout_ms"),
        ({"tier1": ()}, "tier1"),
        ({"ids": ec.parse_endpoints("ids:0")}, "ids"),
        ({"rate_limit_per_s": 0}, "rate_limit_per_s"),
        ({"tiers": {1: DEFAULT_TIERS[1], 2: DEFAULT_TIERS[2]}}, "tiers"),
    ],
    ids=[
        "http-port-0", "admin-port-too-big", "https-without-cert", "cert-without-https",
        "port-clash", "timeout-0", "timeout-below-sidecar-deadline", "timeout-too-long",
        "no-tier1-endpoint", "endpoint-port-0", "rate-limit-0", "tier-missing",
    ],
)
def test_bad_options_are_rejected_naming_the_field(changes: dict[str, Any], field: str) -> None:
    """Invalid or conflicting options raise EnvoyConfigError whose message names the field."""
    with pytest.raises(ec.EnvoyConfigError, match=field):
        dataclasses.replace(ec.RenderOptions(), **changes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tier1:8080", ec.HostPort("tier1", 8080)),
        ("127.0.0.1:9001", ec.HostPort("127.0.0.1", 9001)),
        ("[::1]:9001", ec.HostPort("::1", 9001)),
    ],
    ids=["name", "ipv4", "ipv6"],
)
def test_host_port_parse_round_trips(text: str, expected: ec.HostPort) -> None:
    """host:port parses (IPv6 in brackets) and prints back the same."""
    assert ec.HostPort.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["tier1", "tier1:", ":80", "tier1:http"],
                         ids=["no-port", "empty-port", "no-host", "named-port"])
def test_host_port_parse_rejects_malformed(text: str) -> None:
    """Malformed endpoints raise ValueError."""
    with pytest.raises(ValueError, match="host:port"):
        ec.HostPort.parse(text)


# ------------------------------------------------------------------ CLI


@pytest.fixture
def parser() -> Iterator[argparse.ArgumentParser]:
    root = argparse.ArgumentParser(prog="bioshard")
    ec.add_parser(root.add_subparsers(dest="command", required=True))
    yield root


def test_cli_every_option_has_help(parser: argparse.ArgumentParser) -> None:
    """Every envoy-config option documents itself."""
    sub = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["envoy-config"]
    for action in sub._actions:
        assert action.help, action.dest


def test_cli_writes_validated_json(
    parser: argparse.ArgumentParser, tmp_path: Path, certs: tuple[str, str]
) -> None:
    """envoy-config with endpoints, TLS, --format json --validate --out writes that config."""
    out = tmp_path / "envoy.json"
    args = parser.parse_args([
        "envoy-config", "--sidecar", "127.0.0.1:9100", "--tier1", "127.0.0.1:1,127.0.0.1:2",
        "--https-port", "10443", "--cert", certs[0], "--key", certs[1], "--rate-limit", "4",
        "--no-failure-mode-allow", "--format", "json", "--validate", "--out", str(out),
    ])
    assert args.func(args) == 0
    expected = ec.RenderOptions(
        sidecar=ec.HostPort("127.0.0.1", 9100),
        tier1=ec.parse_endpoints("127.0.0.1:1", "127.0.0.1:2"),
        https_port=10443, cert_path=certs[0], key_path=certs[1], rate_limit_per_s=4,
        failure_mode_allow=False,
    )
    assert json.loads(out.read_text()) == ec.render(expected)


def test_cli_compose_prints_the_committed_config(
    parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    """`envoy-config --compose` prints what envoy/bioshard.yaml holds."""
    args = parser.parse_args(["envoy-config", "--compose"])
    assert args.func(args) == 0
    assert yaml.safe_load(capsys.readouterr().out) == yaml.safe_load(COMMITTED.read_text())


def test_cli_bad_option_exits_2_with_message(
    parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid option combination returns 2 and names the field on stderr."""
    args = parser.parse_args(["envoy-config", "--https-port", "10443"])
    assert args.func(args) == 2
    assert "cert_path" in capsys.readouterr().err
