"""The server's identity: a self-signed TLS certificate made on first run, kept in the workspace.

The SHA-256 fingerprint of the certificate (DER) is what phones pin; the server id is its first
16 hex digits, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.errors import ConfigError
from core.fsio import atomic_write_bytes
from core.workspace import Workspace

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
VALID_DAYS = 3650


def server_dir(workspace: Workspace) -> Path:
    """``<workspace>/server/``: certificate, devices, upload bookkeeping of the capture server."""
    path = workspace.root / "server"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class ServerIdentity:
    server_id: str
    name: str
    fingerprint: str  # lowercase hex SHA-256 of the certificate's DER bytes
    cert_path: Path
    key_path: Path


def certificate_fingerprint(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def der_fingerprint(cert_der: bytes) -> str:
    """Fingerprint of a certificate as a TLS peer presents it (DER), for pinning in clients."""
    return hashlib.sha256(cert_der).hexdigest()


def _make_certificate(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"ScanBridge {name}"[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ScanBridge"),
    ])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    host = socket.gethostname()
    if host and host != "localhost":
        alt_names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def load_or_create_identity(workspace: Workspace, name: str | None = None) -> ServerIdentity:
    """Read the certificate from ``<workspace>/server/``, making one on first run."""
    folder = server_dir(workspace)
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    name = name or socket.gethostname() or "ScanBridge"
    if not cert_path.exists() or not key_path.exists():
        cert_pem, key_pem = _make_certificate(name)
        atomic_write_bytes(key_path, key_pem)
        key_path.chmod(0o600)
        atomic_write_bytes(cert_path, cert_pem)
    try:
        fingerprint = certificate_fingerprint(cert_path.read_bytes())
    except ValueError as e:
        raise ConfigError(f"not a readable certificate ({e}); delete it to make a new one",
                          cert_path) from None
    return ServerIdentity(fingerprint[:16], name, fingerprint, cert_path, key_path)
