"""Self-signed development certificates for the TLS listener (never for production).

``make_self_signed(dir)`` writes ``tls.crt`` (PEM, SAN ``localhost``, ``127.0.0.1``,
``::1`` and any extra names) and ``tls.key`` (PEM, P-256, mode 0600) and returns their
paths.  ``python -m sidecar.devcerts DIR [--name HOST ...]`` does the same from a shell
(the docker-compose demo uses it to fill its ``certs`` volume).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_NAME: Final = "tls.crt"
KEY_NAME: Final = "tls.key"
_VALID_DAYS: Final = 30


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(("localhost", "127.0.0.1", "::1", *names)):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_self_signed(
    directory: Path | str, names: Sequence[str] = (), days: int = _VALID_DAYS
) -> tuple[Path, Path]:
    """Write a self-signed cert + key into ``directory``; returns ``(cert_path, key_path)``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bioshard dev")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = out / CERT_NAME, out / KEY_NAME
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    os.chmod(key_path, 0o600)  # also when the file already existed with wider rights
    return cert_path, key_path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sidecar.devcerts DIR [--name HOST ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m sidecar.devcerts", description="Write a self-signed dev TLS cert + key."
    )
    parser.add_argument("directory", help="output directory (tls.crt, tls.key)")
    parser.add_argument(
        "--name", action="append", default=[], help="extra DNS name or IP for the SAN (repeatable)"
    )
    parser.add_argument("--days", type=int, default=_VALID_DAYS, help="validity in days")
    args = parser.parse_args(argv)
    cert, key = make_self_signed(args.directory, args.name, args.days)
    print(f"wrote {cert} and {key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
