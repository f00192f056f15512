"""The local CA: real mutual-TLS handshakes with what it issues, and its refusals."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from linkage_service.security.certs import (
    IssuedFiles,
    TlsFiles,
    certificate_common_name,
    init_ca,
    issue,
    load_tls_files,
)
from linkage_service.security.errors import CertificateError, SecurityError

pytestmark = pytest.mark.unit

TIMEOUT = 10


@dataclass
class Pki:
    ca_dir: Path
    ca_cert: Path
    server: IssuedFiles
    client: IssuedFiles


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = init_ca(tmp_path / "ca")
    server = issue(tmp_path / "ca", "server", "linkage.local", tmp_path / "ca")
    client = issue(tmp_path / "ca", "agency", "police", tmp_path / "ca")
    return Pki(tmp_path / "ca", ca.cert, server, client)


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@dataclass
class Outcome:
    server: dict[str, Any] = field(default_factory=dict)
    client_error: Exception | None = None
    received: bytes = b""


def _handshake(
    server_chain: IssuedFiles,
    server_trusts: Path,
    client_chain: IssuedFiles | None,
    client_trusts: Path,
    hostname: str = "localhost",
    check_hostname: bool = True,
) -> Outcome:
    """One mutual-TLS connection over loopback; the server demands a client certificate."""
    outcome = Outcome()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(server_chain.cert, server_chain.key)
    server_ctx.load_verify_locations(server_trusts)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            conn.settimeout(TIMEOUT)
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                der = tls.getpeercert(binary_form=True)
                outcome.server["peer_pem"] = ssl.DER_cert_to_PEM_cert(der).encode()
                outcome.server["peer"] = tls.getpeercert()
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as e:
            outcome.server["error"] = e

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = check_hostname
    client_ctx.load_verify_locations(client_trusts)
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if client_chain is not None:
        client_ctx.load_cert_chain(client_chain.cert, client_chain.key)
    try:
        with socket.create_connection(listener.getsockname(), timeout=TIMEOUT) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=hostname) as tls:
                outcome.received = tls.recv(2)  # TLS 1.3: a refused client learns it here
    except (ssl.SSLError, OSError) as e:
        outcome.client_error = e
    thread.join(TIMEOUT)
    listener.close()
    assert not thread.is_alive()
    return outcome


def _peer_cn(peer: dict[str, Any]) -> str:
    return dict(rdn[0] for rdn in peer["subject"])["commonName"]


def test_mutual_tls_handshake_succeeds_and_the_server_sees_the_client_cn(pki: Pki) -> None:
    outcome = _handshake(pki.server, pki.ca_cert, pki.client, pki.ca_cert)
    assert outcome.client_error is None
    assert "error" not in outcome.server
    assert outcome.received == b"ok"
    assert _peer_cn(outcome.server["peer"]) == "police"
    assert certificate_common_name(outcome.server["peer_pem"]) == "police"


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_the_server_certificate_is_valid_for_the_default_loopback_names(
    pki: Pki, hostname: str
) -> None:
    outcome = _handshake(pki.server, pki.ca_cert, pki.client, pki.ca_cert, hostname=hostname)
    assert outcome.client_error is None and outcome.received == b"ok"


def test_the_server_certificate_is_not_valid_for_other_names(pki: Pki) -> None:
    outcome = _handshake(pki.server, pki.ca_cert, pki.client, pki.ca_cert, hostname="evil.test")
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert "mismatch" in outcome.client_error.verify_message


def test_a_client_certificate_from_a_different_ca_is_refused(pki: Pki, tmp_path: Path) -> None:
    init_ca(tmp_path / "other", name="someone else's CA")
    stranger = issue(tmp_path / "other", "agency", "police", tmp_path / "other")
    outcome = _handshake(pki.server, pki.ca_cert, stranger, pki.ca_cert)
    assert "certificate verify failed" in str(outcome.server.get("error"))
    assert "peer" not in outcome.server
    assert outcome.received == b""


def test_a_client_without_a_certificate_is_refused(pki: Pki) -> None:
    outcome = _handshake(pki.server, pki.ca_cert, None, pki.ca_cert)
    assert "did not return a certificate" in str(outcome.server.get("error"))
    assert outcome.received == b""


def test_a_client_rejects_a_server_presenting_a_client_certificate(pki: Pki) -> None:
    # Hostname checking off, so only the certificate's purpose (EKU clientAuth) can fail it.
    outcome = _handshake(pki.client, pki.ca_cert, pki.client, pki.ca_cert, check_hostname=False)
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert "purpose" in outcome.client_error.verify_message


def test_a_server_rejects_a_client_presenting_a_server_certificate(pki: Pki) -> None:
    outcome = _handshake(pki.server, pki.ca_cert, pki.server, pki.ca_cert)
    assert "purpose" in str(outcome.server.get("error"))
    assert outcome.received == b""


def test_extended_key_usage_separates_servers_from_clients(pki: Pki) -> None:
    def eku(path: Path) -> list[x509.ObjectIdentifier]:
        return list(_load(path).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)

    assert eku(pki.server.cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert eku(pki.client.cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_the_ca_may_sign_only_end_entity_certificates(pki: Pki) -> None:
    ca = _load(pki.ca_cert)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    leaf = _load(pki.client.cert).extensions
    assert leaf.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert not leaf.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_the_server_certificate_passes_a_strict_web_pki_verifier(pki: Pki) -> None:
    verifier = (
        PolicyBuilder()
        .store(Store([_load(pki.ca_cert)]))
        .build_server_verifier(x509.DNSName("localhost"))
    )
    server, ca = _load(pki.server.cert), _load(pki.ca_cert)
    assert verifier.verify(server, []) == [server, ca]


def _san(path: Path) -> x509.SubjectAlternativeName:
    return _load(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_server_san_defaults_to_localhost_and_both_loopback_addresses(pki: Pki) -> None:
    san = _san(pki.server.cert)
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_server_hosts_replace_the_defaults_and_ip_literals_become_addresses(pki: Pki) -> None:
    hosts = ("linkage.mash.example", "10.0.0.7", "Linkage.MASH.example", "fd00::7")
    files = issue(pki.ca_dir, "server", "linkage", pki.ca_dir / "web", hosts=hosts)
    san = _san(files.cert)
    assert san.get_values_for_type(x509.DNSName) == ["linkage.mash.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("fd00::7"),
    ]


def test_subjects_carry_the_name_and_for_callers_the_role(pki: Pki) -> None:
    server, client = _load(pki.server.cert).subject, _load(pki.client.cert).subject
    assert server.rfc4514_string() == "CN=linkage.local"
    assert client.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "police"
    assert client.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "agency"


@pytest.mark.parametrize("role", ["agency", "coordinator", "auditor", "admin"])
def test_caller_files_are_named_by_role_and_name(pki: Pki, role: str) -> None:
    files = issue(pki.ca_dir, role, "mash-1", pki.ca_dir)
    assert (files.cert.name, files.key.name) == (f"{role}-mash-1.crt", f"{role}-mash-1.key")
    assert certificate_common_name(files.cert.read_bytes()) == "mash-1"


def test_key_files_are_readable_only_by_their_owner(pki: Pki) -> None:
    for key in (pki.ca_dir / "ca.key", pki.server.key, pki.client.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key.name
    assert pki.server.key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("existing", ["ca.crt", "ca.key"])
def test_init_refuses_to_overwrite_either_ca_file(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("keep me")
    with pytest.raises(CertificateError, match="already exists; refusing to overwrite"):
        init_ca(tmp_path)
    assert (tmp_path / existing).read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


def test_issue_refuses_to_overwrite_and_leaves_both_files_alone(pki: Pki) -> None:
    before = pki.client.cert.read_bytes(), pki.client.key.read_bytes()
    with pytest.raises(CertificateError, match="agency-police.crt already exists"):
        issue(pki.ca_dir, "agency", "police", pki.ca_dir)
    assert (pki.client.cert.read_bytes(), pki.client.key.read_bytes()) == before


def test_issue_does_not_leave_a_key_without_its_certificate(pki: Pki) -> None:
    (pki.ca_dir / "auditor-a.crt").write_text("someone else's")
    with pytest.raises(CertificateError, match="already exists"):
        issue(pki.ca_dir, "auditor", "a", pki.ca_dir)
    assert not (pki.ca_dir / "auditor-a.key").exists()


def test_an_unknown_role_is_refused_with_the_choices(pki: Pki) -> None:
    with pytest.raises(CertificateError, match="unknown role 'police'; choose one of server"):
        issue(pki.ca_dir, "police", "x", pki.ca_dir)


@pytest.mark.parametrize(
    "name", ["", "a" * 65, "po lice", "../etc", "a/b", "naïve", "x\n", "agency:police"]
)
def test_a_name_outside_the_rule_is_refused_naming_the_rule(pki: Pki, name: str) -> None:
    with pytest.raises(CertificateError, match=r"not allowed: use 1-64 characters, each a letter"):
        issue(pki.ca_dir, "agency", name, pki.ca_dir)
    assert sorted(p.name for p in pki.ca_dir.iterdir()) == sorted(
        ["ca.crt", "ca.key", "server.crt", "server.key", "agency-police.crt", "agency-police.key"]
    )


def test_hosts_are_refused_for_a_client_certificate(pki: Pki) -> None:
    with pytest.raises(CertificateError, match="hosts are for server certificates only"):
        issue(pki.ca_dir, "coordinator", "c", pki.ca_dir, hosts=("localhost",))


@pytest.mark.parametrize("host", ["-bad.example", "a..b", "*.example", "under_score.example", ""])
def test_a_host_that_is_neither_address_nor_dns_name_is_refused(pki: Pki, host: str) -> None:
    with pytest.raises(CertificateError, match="neither an IP address nor a DNS name"):
        issue(pki.ca_dir, "server", "s", pki.ca_dir / "s", hosts=(host,))


def test_issue_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="no CA in .*ca.crt is missing.*certs init"):
        issue(tmp_path, "agency", "police", tmp_path)


def test_a_certificate_may_not_outlive_its_ca(tmp_path: Path) -> None:
    init_ca(tmp_path, days=30)
    with pytest.raises(CertificateError, match="CA certificate expires on .* fewer days"):
        issue(tmp_path, "agency", "police", tmp_path)
    assert issue(tmp_path, "agency", "police", tmp_path, days=29).cert.exists()


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_days_out_of_range_are_refused(tmp_path: Path, days: int) -> None:
    with pytest.raises(CertificateError, match="days must be between 1 and 3650"):
        init_ca(tmp_path, days=days)


def test_load_tls_files_returns_the_bytes_of_each(pki: Pki) -> None:
    files = load_tls_files(pki.server.cert, pki.server.key, pki.ca_cert)
    assert files.cert_chain == pki.server.cert.read_bytes()
    assert files.private_key == pki.server.key.read_bytes()
    assert files.root == pki.ca_cert.read_bytes()


def test_load_tls_files_detects_a_key_that_belongs_to_another_certificate(pki: Pki) -> None:
    with pytest.raises(CertificateError, match="does not belong to certificate"):
        load_tls_files(pki.server.cert, pki.client.key, pki.ca_cert)


def test_load_tls_files_names_a_missing_or_non_pem_file(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="private key .*nope.key does not exist"):
        load_tls_files(pki.server.cert, tmp_path / "nope.key", pki.ca_cert)
    junk = tmp_path / "junk.crt"
    junk.write_bytes(b"\x00\x01 not a certificate")
    with pytest.raises(CertificateError, match="is not PEM"):
        load_tls_files(junk, pki.server.key, pki.ca_cert)
    with pytest.raises(CertificateError, match="no valid PEM private key"):
        load_tls_files(pki.server.cert, pki.server.cert, pki.ca_cert)
    broken = tmp_path / "broken.crt"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError, match="CA certificate .* no valid PEM certificate"):
        load_tls_files(pki.server.cert, pki.server.key, broken)
    with pytest.raises(CertificateError, match="cannot read certificate"):
        load_tls_files(tmp_path, pki.server.key, pki.ca_cert)


def test_load_tls_files_refuses_a_key_inside_a_certificate_file(pki: Pki, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.server.cert.read_bytes() + pki.server.key.read_bytes())
    with pytest.raises(CertificateError, match="holds a private key"):
        load_tls_files(bundle, pki.server.key, pki.ca_cert)


def test_load_tls_files_refuses_the_ca_certificate_as_an_end_certificate(pki: Pki) -> None:
    with pytest.raises(CertificateError, match="is a CA certificate"):
        load_tls_files(pki.ca_cert, pki.ca_dir / "ca.key", pki.ca_cert)


def test_the_private_key_never_appears_in_repr_or_str(pki: Pki) -> None:
    files = load_tls_files(pki.client.cert, pki.client.key, pki.ca_cert)
    body = b"".join(files.private_key.splitlines()[1:-1]).decode()
    for shown in (repr(files), str(files), f"{files}", repr([files])):
        assert "redacted" in shown
        assert body not in shown and body[:16] not in shown
        assert "PRIVATE" not in shown
    assert repr(files).startswith("TlsFiles(")
    assert isinstance(files, TlsFiles)


def test_certificate_common_name_needs_a_pem_certificate() -> None:
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        certificate_common_name(b"hello")


def test_certificate_errors_are_security_errors() -> None:
    assert issubclass(CertificateError, SecurityError)
    assert issubclass(SecurityError, Exception) and not issubclass(SecurityError, ValueError)
