"""Tests for docker/: what can be checked without a Docker engine (compose file, Dockerfile)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar import envoy_config as ec

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
POOLS = ("tier1", "tier2", "tier3", "ids")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_compose_has_envoy_sidecar_pools_and_ids(compose: dict[str, Any]) -> None:
    """The compose file defines envoy, sidecar, the three pools and the IDS."""
    assert {"envoy", "sidecar", *POOLS} <= set(compose["services"])


def test_envoy_service_uses_official_image_and_committed_config(compose: dict[str, Any]) -> None:
    """Envoy runs the official 1.40 image on envoy/bioshard.yaml, mounted read-only."""
    envoy = compose["services"]["envoy"]
    assert re.fullmatch(r"envoyproxy/envoy:v1\.40(\.\d+|-latest)", envoy["image"])
    mounts = {}
    for volume in envoy["volumes"]:
        source, target, *mode = volume.split(":")
        mounts[target] = (source, mode)
    config_target = envoy["command"][envoy["command"].index("-c") + 1]
    source, mode = mounts[config_target]
    assert (DOCKER / source).resolve() == REPO / "envoy" / "bioshard.yaml"
    assert mode == ["ro"]


def test_compose_addresses_match_the_rendered_defaults(compose: dict[str, Any]) -> None:
    """Service names, ports and cert paths are the ones compose_defaults() renders."""
    opts = ec.compose_defaults()
    services = compose["services"]
    sidecar_cmd = services["sidecar"]["command"]
    assert sidecar_cmd[sidecar_cmd.index("--listen") + 1] == f"0.0.0.0:{opts.sidecar.port}"
    assert opts.sidecar.host == "sidecar"
    for pool in POOLS:
        (endpoint,) = getattr(opts, pool)
        assert endpoint.host == pool
        cmd = services[pool]["command"]
        assert cmd[cmd.index("--pool") + 1] == pool
        assert cmd[cmd.index("--port") + 1] == str(endpoint.port)
    published = {str(p).split(":")[-1] for p in services["envoy"]["ports"]}
    assert {str(opts.http_port), str(opts.https_port)} <= published
    cert_dir = str(Path(opts.cert_path or "").parent)
    assert any(v.split(":")[1] == cert_dir for v in services["envoy"]["volumes"])


def test_sidecar_and_pools_are_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    """The sidecar and the pools use the image built from docker/Dockerfile."""
    for name in ("sidecar", *POOLS):
        build = compose["services"][name]["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_no_admin_port_is_published_to_all_interfaces(compose: dict[str, Any]) -> None:
    """Envoy's admin port is not published; the sidecar admin API only on 127.0.0.1."""
    envoy_ports = [str(p) for p in compose["services"]["envoy"]["ports"]]
    assert not any(p.endswith(str(ec.compose_defaults().admin_port)) for p in envoy_ports)
    for port in compose["services"]["sidecar"].get("ports", []):
        assert str(port).startswith("127.0.0.1:")


def test_dockerfile_installs_package_and_serves_as_non_root() -> None:
    """The Dockerfile pip-installs the package and runs `bioshard serve` as a non-root user."""
    instructions = _dockerfile_instructions()
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs)
    users = [args for word, args in instructions if word == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    (cmd,) = [args for word, args in instructions if word == "CMD"]
    argv = yaml.safe_load(cmd)  # exec form is a JSON array
    assert argv[:2] == ["bioshard", "serve"]
    user_index = max(i for i, (word, _) in enumerate(instructions) if word == "USER")
    cmd_index = max(i for i, (word, _) in enumerate(instructions) if word == "CMD")
    assert user_index < cmd_index


def _compose_cli() -> list[str] | None:
    """A compose CLI able to run `config` (no engine needed), or None."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False, timeout=30).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_accepted_by_compose_cli(tmp_path: Path) -> None:
    """`docker compose config` (or docker-compose) accepts the file."""
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose / docker-compose CLI on this machine")
    proc = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config"], capture_output=True, text=True, check=False,
        timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 0, f"{shlex.join(cli)} config failed:\n{proc.stderr}"
    resolved = yaml.safe_load(proc.stdout)
    assert {"envoy", "sidecar", *POOLS} <= set(resolved["services"])
