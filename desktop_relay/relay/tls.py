"""HTTPS for the LAN: a local certificate authority made once, and a server certificate for
this machine's addresses signed by it.

Phones only allow the camera on secure pages, so the relay serves https by default. A device
that trusts the CA once (downloaded from `/ca.crt`) keeps trusting the relay even when the
machine's addresses change and the server certificate is made anew.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
# Apple refuses server certificates valid for more than 825 days.
SERVER_DAYS = 397
CA_DAYS = 3650


@dataclass(frozen=True)
class TlsFiles:
    """A certificate chain and its key; `ca_cert` is what devices may download and trust."""

    cert: Path
    key: Path
    ca_cert: Path | None = None

    def context(self) -> ssl.SSLContext:
        """A server SSL context; raises ValueError with a clear message on bad files."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"cannot use certificate {self.cert} with key {self.key}: {exc}"
            ) from None
        return ctx


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _make_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"Desktop Relay local CA ({socket.gethostname()})"
            ),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Desktop Relay"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(folder / CA_KEY, _key_pem(key))
    (folder / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.not_valid_after_utc < _now() + dt.timedelta(days=30):
        return None
    return cert, key


def _sans(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _covers(cert_path: Path, ca: x509.Certificate, hosts: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return (
        cert.issuer == ca.subject
        and cert.not_valid_after_utc > _now() + dt.timedelta(days=7)
        and all(name in list(san) for name in _sans(hosts))
    )


def machine_hosts(addresses: list[str]) -> list[str]:
    """The names and addresses a server certificate for this machine should cover."""
    hostname = socket.gethostname()
    hosts = [hostname, f"{hostname}.local", "localhost", "127.0.0.1", "::1", *addresses]
    return list(dict.fromkeys(h for h in hosts if h))


def ensure_certificate(folder: Path, hosts: list[str]) -> TlsFiles:
    """Reuse or make the local CA and a server certificate covering `hosts`."""
    folder.mkdir(parents=True, exist_ok=True)
    loaded = _load_ca(folder)
    ca_cert, ca_key = loaded if loaded else _make_ca(folder)
    cert_path, key_path = folder / SERVER_CERT, folder / SERVER_KEY
    if loaded and key_path.exists() and _covers(cert_path, ca_cert, hosts):
        return TlsFiles(cert_path, key_path, folder / CA_CERT)
    log.info("making a server certificate for %s", ", ".join(hosts))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    # The chain (server then CA) so clients that were given only the CA can build the path.
    cert_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    return TlsFiles(cert_path, key_path, folder / CA_CERT)


def fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint of the first certificate in a PEM file, for checking by eye."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
