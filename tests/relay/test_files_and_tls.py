"""Files the relay keeps for the user (token, stream keys, TLS keys) are private, and its local
certificate authority is name-constrained, short-lived and renewed by itself."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from desktop_relay.relay.security import tls
from desktop_relay.relay.security.auth import load_or_create_token, save_token
from desktop_relay.relay.security.keystore import KeyStore

from ..media import require_tool

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- file modes -----------------------------------------------------------------------


@posix_only
def test_new_token_file_and_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "token"
    token = load_or_create_token(path)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert load_or_create_token(path) == token


@posix_only
def test_token_file_left_open_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    path = folder / "token"
    path.write_text("old-token-0123456789\n")
    path.chmod(0o644)
    assert load_or_create_token(path) == "old-token-0123456789"  # read: fixed
    assert mode(path) == 0o600
    path.chmod(0o644)
    save_token(path, "rotated-token-0123456789")  # saved over: fixed too
    assert mode(path) == 0o600 and mode(folder) == 0o700
    assert path.read_text() == "rotated-token-0123456789\n"


@posix_only
def test_keystore_fallback_file_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o755)
    path = folder / "stream-keys.json"
    path.write_text('{"old": "key-from-an-older-version"}')
    path.chmod(0o644)
    store = KeyStore(path, use_keyring=False)
    assert store.get("old") == "key-from-an-older-version"
    assert mode(path) == 0o600  # tightened on read, before anything new is written
    store.set("default-target-key", "new-stream-key")
    assert mode(path) == 0o600 and mode(folder) == 0o700


@posix_only
def test_tls_keys_and_folder_are_private_also_when_left_open(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    files = tls.ensure_certificate(folder, ["127.0.0.1"])
    assert mode(folder) == 0o700
    assert mode(files.key) == 0o600 and mode(folder / tls.CA_KEY) == 0o600
    for path in (folder, files.key, folder / tls.CA_KEY):
        path.chmod(0o755 if path.is_dir() else 0o644)
    again = tls.ensure_certificate(folder, ["127.0.0.1"])
    assert again.cert.read_bytes() == files.cert.read_bytes()  # reused, not remade
    assert mode(folder) == 0o700
    assert mode(files.key) == 0o600 and mode(folder / tls.CA_KEY) == 0o600


# ---- the local CA -----------------------------------------------------------------------


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def lifetime(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def constraints(cert: x509.Certificate) -> x509.Extension[x509.NameConstraints]:
    return cert.extensions.get_extension_for_class(x509.NameConstraints)


def test_ca_is_name_constrained_and_short_lived(tmp_path: Path) -> None:
    files = tls.ensure_certificate(tmp_path, ["myhost", "localhost", "127.0.0.1", "192.168.1.20"])
    assert files.ca_cert is not None
    ca = load_cert(files.ca_cert)
    ext = constraints(ca)
    assert ext.critical
    permitted = ext.value.permitted_subtrees or []
    dns = {n.value for n in permitted if isinstance(n, x509.DNSName)}
    nets = {n.value for n in permitted if isinstance(n, x509.IPAddress)}
    assert {"localhost", "local", socket.gethostname().lower(), "myhost"} <= dns
    # Broad enough that a new DHCP lease or another Wi-Fi needs no new CA.
    assert {
        ipaddress.ip_network(n)
        for n in (
            "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
            "fc00::/7", "fe80::/10", "::1/128",
        )
    } <= nets
    assert ext.value.excluded_subtrees is None
    assert dt.timedelta(days=700) <= lifetime(ca) <= dt.timedelta(days=732)
    server = load_cert(files.cert)
    assert lifetime(server) <= dt.timedelta(days=398)
    assert server.not_valid_after_utc <= ca.not_valid_after_utc


def sign_server_cert(folder: Path, name: str, out: Path, out_key: Path) -> None:
    """A server certificate for `name` signed with the relay's CA key: what an attacker who
    stole the key would make."""
    ca = load_cert(folder / tls.CA_CERT)
    ca_key = serialization.load_pem_private_key((folder / tls.CA_KEY).read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        san = x509.DNSName(name)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forged")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def openssl_verify(ca: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    openssl = require_tool("openssl")
    return subprocess.run(
        [openssl, "verify", "-x509_strict", "-CAfile", str(ca), str(cert)],
        capture_output=True, text=True, timeout=30,
    )


def webpki_verify(ca: Path, cert: Path, name: str) -> None:
    """cryptography's Web PKI verifier (the rules browsers apply to public CAs; stricter)."""
    try:
        subject: verification.Subject = verification.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = verification.DNSName(name)
    store = verification.Store([load_cert(ca)])
    verifier = verification.PolicyBuilder().store(store).build_server_verifier(subject)
    verifier.verify(x509.load_pem_x509_certificates(cert.read_bytes())[0], [])


def python_ssl_verify(ca: Path, cert_chain: Path, key: Path, server_name: str) -> None:
    """A TLS handshake in memory: Python's ssl (OpenSSL) client trusting only `ca`."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_chain, key)
    client_ctx = ssl.create_default_context(cafile=str(ca))
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_name)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        done = True
        for side, out, peer_in in ((client, c_out, s_in), (server, s_out, c_in)):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                done = False
            peer_in.write(out.read())
        if done:
            return
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("outside", ["bank.example.com", "8.8.8.8", "2001:db8::1"])
def test_ca_cannot_vouch_for_names_outside_its_constraints(tmp_path: Path, outside: str) -> None:
    folder = tmp_path / "tls"
    hosts = ["localhost", "127.0.0.1", "192.168.1.20"]
    files = tls.ensure_certificate(folder, hosts)
    assert files.ca_cert is not None
    # The relay's own certificate verifies, with OpenSSL's tool and in a Python handshake.
    ours = openssl_verify(files.ca_cert, files.cert)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    python_ssl_verify(files.ca_cert, files.cert, files.key, "127.0.0.1")
    python_ssl_verify(files.ca_cert, files.cert, files.key, "localhost")
    webpki_verify(files.ca_cert, files.cert, "192.168.1.20")
    # One for a name outside the constraints, signed with the same CA key, does not.
    forged, forged_key = tmp_path / "forged.crt", tmp_path / "forged.key"
    sign_server_cert(folder, outside, forged, forged_key)
    result = openssl_verify(files.ca_cert, forged)
    assert result.returncode != 0
    assert "permitted subtree violation" in result.stdout + result.stderr
    with pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"):
        python_ssl_verify(files.ca_cert, forged, forged_key, outside)
    with pytest.raises(verification.VerificationError):
        webpki_verify(files.ca_cert, forged, outside)


def test_server_cert_with_only_addresses_verifies(tmp_path: Path) -> None:
    # The subject's common name must not look like a host name outside the constraints
    # (OpenSSL checks a CN that looks like one when there is no DNS name in the certificate).
    files = tls.ensure_certificate(tmp_path, ["127.0.0.1", "192.168.1.20"])
    assert files.ca_cert is not None
    result = openssl_verify(files.ca_cert, files.cert)
    assert result.returncode == 0, result.stdout + result.stderr


def write_old_ca(folder: Path, days: int = 3650, age_days: int = 1) -> bytes:
    """A CA like the one versions before name constraints made: 10 years, unconstrained."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Desktop Relay local CA (old)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=age_days))
        .not_valid_after(now - dt.timedelta(days=age_days) + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / tls.CA_KEY).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / tls.CA_CERT).write_bytes(pem)
    return pem


def test_old_unconstrained_ca_is_replaced_once(tmp_path: Path) -> None:
    old = write_old_ca(tmp_path)
    files = tls.ensure_certificate(tmp_path, ["127.0.0.1"])
    assert files.ca_cert is not None
    new = files.ca_cert.read_bytes()
    assert new != old
    assert constraints(load_cert(files.ca_cert)).critical
    assert openssl_verify(files.ca_cert, files.cert).returncode == 0
    # Replaced once: the next start keeps the new CA and the server certificate.
    cert = files.cert.read_bytes()
    again = tls.ensure_certificate(tmp_path, ["127.0.0.1"])
    assert again.ca_cert is not None and again.ca_cert.read_bytes() == new
    assert again.cert.read_bytes() == cert


def test_ca_close_to_expiry_is_renewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = tls.ensure_certificate(tmp_path, ["127.0.0.1"])
    assert files.ca_cert is not None
    first = files.ca_cert.read_bytes()
    ca = load_cert(files.ca_cert)
    # 20 days before the CA expires.
    later = ca.not_valid_after_utc - dt.timedelta(days=20)
    monkeypatch.setattr(tls, "_now", lambda: later)
    renewed = tls.ensure_certificate(tmp_path, ["127.0.0.1"])
    assert renewed.ca_cert is not None and renewed.ca_cert.read_bytes() != first
    new_ca = load_cert(renewed.ca_cert)
    assert new_ca.not_valid_after_utc > later + dt.timedelta(days=700)
    server = load_cert(renewed.cert)
    server.verify_directly_issued_by(new_ca)


def test_server_cert_never_outlives_its_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = tls.ensure_certificate(tmp_path, ["127.0.0.1"])
    assert files.ca_cert is not None
    ca = load_cert(files.ca_cert)
    # 100 days before the CA expires, the machine moves: a new server certificate is made,
    # by the same CA, and ends with it rather than 397 days later.
    later = ca.not_valid_after_utc - dt.timedelta(days=100)
    monkeypatch.setattr(tls, "_now", lambda: later)
    moved = tls.ensure_certificate(tmp_path, ["127.0.0.1", "10.1.2.3"])
    assert moved.ca_cert is not None and load_cert(moved.ca_cert) == ca
    assert load_cert(moved.cert).not_valid_after_utc <= ca.not_valid_after_utc


def test_new_address_inside_the_private_ranges_keeps_the_ca(tmp_path: Path) -> None:
    files = tls.ensure_certificate(tmp_path, ["localhost", "127.0.0.1", "192.168.1.20"])
    assert files.ca_cert is not None
    ca = files.ca_cert.read_bytes()
    for addresses in (["10.0.0.7"], ["172.20.1.2"], ["169.254.3.4"], ["fe80::1"]):
        moved = tls.ensure_certificate(tmp_path, ["localhost", "127.0.0.1", *addresses])
        assert moved.ca_cert is not None and moved.ca_cert.read_bytes() == ca  # trust kept
        assert openssl_verify(moved.ca_cert, moved.cert).returncode == 0


def test_public_address_gets_a_ca_that_covers_it(tmp_path: Path) -> None:
    # A server with a public address: the CA must permit it (else the relay's own certificate
    # would not verify); when that address changes, the CA is made anew.
    files = tls.ensure_certificate(tmp_path, ["127.0.0.1", "203.0.113.5"])
    assert files.ca_cert is not None
    assert openssl_verify(files.ca_cert, files.cert).returncode == 0
    first = files.ca_cert.read_bytes()
    moved = tls.ensure_certificate(tmp_path, ["127.0.0.1", "203.0.113.9"])
    assert moved.ca_cert is not None and moved.ca_cert.read_bytes() != first
    assert openssl_verify(moved.ca_cert, moved.cert).returncode == 0

