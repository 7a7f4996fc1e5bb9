"""HTTPS for the LAN: a local certificate authority made once, and a server certificate for
this machine's addresses signed by it.

Phones only allow the camera on secure pages, so the relay serves https by default. A device
that trusts the CA once (downloaded from `/ca.crt`) keeps trusting the relay even when the
machine's addresses change and the server certificate is made anew.

A CA a device trusts could vouch for any web site if its key leaked (the key sits in the
user's data folder). So the CA is name-constrained (RFC 5280, critical) to what the relay
serves on: `localhost`, `.local` names, this machine's host name, and the private, loopback,
link-local and shared (CGNAT, also Tailscale) address ranges, plus any other address or name it
is asked to cover. The ranges are whole on purpose: a DHCP lease or another Wi-Fi moves the
machine within them, and a CA constrained to the exact old addresses would have to be made anew,
which every device would have to trust again. Only a name or public address outside them (a
server with a public IP) makes a new CA, quietly (logged), when it changes.

The CA lives 2 years and is renewed by itself with less than 30 days left; a CA from an older
version (10 years, no constraints) is replaced once. Server certificates live 397 days at most
(Apple's limit for certificates of trusted CAs) and never beyond their CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .private_files import private_dir, tighten, write_private

log = logging.getLogger(__name__)

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
# Apple refuses server certificates valid for more than 398 days from CAs a user trusts.
SERVER_DAYS = 397
CA_DAYS = 730
# A CA (or server certificate) with less left than this is made anew at start.
CA_RENEW_DAYS = 30
SERVER_RENEW_DAYS = 7

# What the CA may vouch for whatever the machine's current addresses: see the module docstring.
LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",  # loopback
        "10.0.0.0/8",  # private (RFC 1918)
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",  # link-local
        "100.64.0.0/10",  # shared address space (carrier NAT, Tailscale)
        "::1/128",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
    )
)
# A DNS constraint covers the name and every name below it: "local" is `*.local` (mDNS).
LOCAL_DOMAINS = ("localhost", "local")


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


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _host_name(host: str) -> x509.GeneralName:
    """`host` as a subject alternative name: an IP address, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _permits(subtrees: list[x509.GeneralName], host: str) -> bool:
    """Whether name constraints with these permitted subtrees allow `host`."""
    name = _host_name(host)
    if isinstance(name, x509.IPAddress):
        return any(
            isinstance(t, x509.IPAddress)
            and isinstance(t.value, ipaddress.IPv4Network | ipaddress.IPv6Network)
            and name.value in t.value
            for t in subtrees
        )
    dns = host.lower().rstrip(".")
    return any(
        isinstance(t, x509.DNSName)
        and (dns == t.value.lower() or dns.endswith("." + t.value.lower()))
        for t in subtrees
    )


def _ca_subtrees(hosts: list[str]) -> list[x509.GeneralName]:
    """The permitted subtrees of a CA for `hosts`: the local ranges and names, the host name,
    and whatever of `hosts` they do not cover yet."""
    subtrees: list[x509.GeneralName] = [x509.IPAddress(n) for n in LOCAL_NETWORKS]
    subtrees += [x509.DNSName(d) for d in LOCAL_DOMAINS]
    for host in [socket.gethostname(), *hosts]:
        host = host.lower().rstrip(".")
        if not host or _permits(subtrees, host):
            continue
        name = _host_name(host)
        if isinstance(name, x509.IPAddress):
            address = ipaddress.ip_address(host)
            name = x509.IPAddress(ipaddress.ip_network(f"{address}/{address.max_prefixlen}"))
        subtrees.append(name)
    return subtrees


def _permitted_subtrees(ca: x509.Certificate) -> list[x509.GeneralName] | None:
    """The CA's permitted subtrees; None when it has no (critical) name constraints."""
    try:
        ext = ca.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return None
    if not ext.critical:
        return None
    return list(ext.value.permitted_subtrees or [])


def _make_ca(folder: Path, hosts: list[str]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
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
        .add_extension(
            x509.NameConstraints(permitted_subtrees=_ca_subtrees(hosts), excluded_subtrees=None),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(folder / CA_KEY, _key_pem(key))
    (folder / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _load_ca(
    folder: Path, hosts: list[str]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The CA in `folder` if it is still fit for `hosts`, else None (then a new one is made)."""
    tighten(folder / CA_KEY)  # left readable by others (an older version, a copy)
    try:
        cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    subtrees = _permitted_subtrees(cert)
    if subtrees is None or cert.not_valid_after_utc - cert.not_valid_before_utc > dt.timedelta(
        days=CA_DAYS + 1
    ):
        why = "it has no name constraints (made by an older version)"
    elif cert.not_valid_after_utc < _now() + dt.timedelta(days=CA_RENEW_DAYS):
        why = f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    elif outside := [h for h in hosts if not _permits(subtrees, h)]:
        why = f"it may not vouch for {', '.join(outside)}"
    else:
        return cert, key
    log.info(
        "making a new local certificate authority: %s; devices that trusted the old one "
        "need to trust the new one",
        why,
    )
    return None


def _sans(hosts: list[str]) -> list[x509.GeneralName]:
    return [_host_name(host) for host in hosts]


def _covers(cert_path: Path, ca: x509.Certificate, hosts: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        # Signed by this CA's key, not only by one of the same name (a renewed CA keeps it).
        cert.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return cert.not_valid_after_utc > _now() + dt.timedelta(days=SERVER_RENEW_DAYS) and all(
        name in list(san) for name in _sans(hosts)
    )


def machine_hosts(addresses: list[str]) -> list[str]:
    """The names and addresses a server certificate for this machine should cover."""
    hostname = socket.gethostname()
    hosts = [hostname, f"{hostname}.local", "localhost", "127.0.0.1", "::1", *addresses]
    return list(dict.fromkeys(h for h in hosts if h))


def ensure_certificate(folder: Path, hosts: list[str]) -> TlsFiles:
    """Reuse or make the local CA and a server certificate covering `hosts`.

    The folder is kept 0700 and the keys 0600. The CA is renewed quietly (see the module
    docstring) when it nears its end, has no name constraints, or cannot vouch for `hosts`.
    """
    private_dir(folder)
    loaded = _load_ca(folder, hosts)
    ca_cert, ca_key = loaded if loaded else _make_ca(folder, hosts)
    cert_path, key_path = folder / SERVER_CERT, folder / SERVER_KEY
    tighten(key_path)
    if loaded and key_path.exists() and _covers(cert_path, ca_cert, hosts):
        return TlsFiles(cert_path, key_path, folder / CA_CERT)
    log.info("making a server certificate for %s", ", ".join(hosts))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        # Not a host name: OpenSSL checks a common name that looks like one against the CA's
        # DNS constraints when the certificate has no DNS name (an address-only certificate).
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(
                        NameOID.COMMON_NAME, f"Desktop Relay ({socket.gethostname()})"[:64]
                    )
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(min(_now() + dt.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(key_path, _key_pem(key))
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
