"""A local certificate authority for mutual TLS, and the loading of TLS files for the service.

The CA is for demonstrations and local deployments; production uses the organisation's own PKI.
Keys are EC P-256 and signatures ECDSA with SHA-256. The CA may sign only end-entity
certificates (path length 0). A server certificate authenticates only a server (serverAuth) and a
client certificate only a client (clientAuth); the identity the service sees is the client
certificate's common name. Every file is created with O_EXCL, so nothing is ever overwritten, and
key files are mode 0600. Private-key bytes are never logged, printed or shown in a repr.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import CertificateError

__all__ = [
    "ROLES",
    "CaFiles",
    "IssuedFiles",
    "TlsFiles",
    "certificate_common_name",
    "init_ca",
    "issue",
    "load_tls_files",
]

ROLES = ("server", "agency", "coordinator", "auditor", "admin")
DEFAULT_SERVER_HOSTS = ("localhost", "127.0.0.1", "::1")
CA_CERT, CA_KEY = "ca.crt", "ca.key"
NAME_RULE = "1-64 characters, each a letter, digit, '.', '_' or '-'"
MAX_DAYS = 3650
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MAX_PEM_BYTES = 1 << 20
_BACKDATE = dt.timedelta(minutes=5)  # tolerate peers whose clocks are a little behind


@dataclass(frozen=True)
class CaFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class IssuedFiles:
    cert: Path
    key: Path


@dataclass(frozen=True, repr=False)
class TlsFiles:
    """PEM bytes for one end of a mutual-TLS connection; `root` verifies the peer."""

    cert_chain: bytes
    private_key: bytes
    root: bytes

    def __repr__(self) -> str:
        return (
            f"TlsFiles(cert_chain=<{len(self.cert_chain)} bytes>, private_key=<redacted>, "
            f"root=<{len(self.root)} bytes>)"
        )


def init_ca(directory: Path, name: str = "MASH linkage local CA", days: int = 825) -> CaFiles:
    """Create `ca.key` (mode 0600) and the self-signed `ca.crt` in `directory`; never overwrites."""
    _check_days(days)
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise CertificateError(f"CA name {name!r} must be 1-64 printable characters")
    files = CaFiles(directory / CA_CERT, directory / CA_KEY)
    _refuse_existing(files.cert, files.key)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = _builder(subject, subject, key, key, days, ca=True).sign(key, hashes.SHA256())
    _write_pair(files, cert, key)
    return files


def issue(
    ca_dir: Path,
    role: str,
    name: str,
    out_dir: Path,
    hosts: tuple[str, ...] = (),
    days: int = 397,
) -> IssuedFiles:
    """Sign a new key for a server or a caller with the CA in `ca_dir`; write it to `out_dir`.

    Files are `server.crt`/`.key` for the server and `<role>-<name>.crt`/`.key` otherwise.
    """
    if role not in ROLES:
        raise CertificateError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if not _NAME.fullmatch(name):
        raise CertificateError(f"name {name!r} is not allowed: use {NAME_RULE}")
    _check_days(days)
    purpose = _purpose(role, hosts)
    stem = "server" if role == "server" else f"{role}-{name}"
    files = IssuedFiles(out_dir / f"{stem}.crt", out_dir / f"{stem}.key")
    _refuse_existing(files.cert, files.key)
    ca_cert, ca_key = _load_ca(ca_dir, days)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(_subject(role, name), ca_cert.subject, key, ca_key, days, ca=False)
    for extension in purpose:
        builder = builder.add_extension(extension, critical=False)
    _write_pair(files, builder.sign(ca_key, hashes.SHA256()), key)
    return files


def load_tls_files(cert: Path, key: Path, ca: Path) -> TlsFiles:
    """Read and check one end's certificate (chain), its private key and the peers' CA bundle."""
    cert_pem = _read_pem(cert, "certificate")
    key_pem = _read_pem(key, "private key")
    ca_pem = _read_pem(ca, "CA certificate")
    for path, pem in ((cert, cert_pem), (ca, ca_pem)):
        if b"PRIVATE KEY-----" in pem:
            raise CertificateError(f"{path} holds a private key; keep the key in its own file")
    leaf = _parse_certs(cert_pem, cert, "certificate")[0]
    _parse_certs(ca_pem, ca, "CA certificate")
    if _is_ca(leaf):
        raise CertificateError(f"{cert} is a CA certificate, not a server or client certificate")
    if not _same_public_key(leaf, _parse_key(key_pem, key)):
        raise CertificateError(
            f"private key {key} does not belong to certificate {cert} (their public keys differ)"
        )
    return TlsFiles(cert_chain=cert_pem, private_key=key_pem, root=ca_pem)


def certificate_common_name(pem: bytes) -> str:
    """The one common name (CN) in the subject of a PEM certificate: the caller's identity."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CertificateError("not a PEM certificate") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise CertificateError(
            f"the certificate's subject has {len(names)} common names; exactly one is needed"
        )
    value = names[0].value
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    days: int,
    *,
    ca: bool,
) -> x509.CertificateBuilder:
    """Validity, key identifiers, basic constraints and key usage: what every certificate has."""
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(_key_usage(ca=ca), critical=True)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _subject(role: str, name: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if role != "server":
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
    return x509.Name(attributes)


def _purpose(role: str, hosts: tuple[str, ...]) -> list[x509.ExtensionType]:
    """Extended key usage, and for a server the names it may be reached by."""
    if role != "server":
        if hosts:
            raise CertificateError(f"hosts are for server certificates only, not for {role}")
        return [x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])]
    entries = list(dict.fromkeys(_host_entry(h) for h in hosts or DEFAULT_SERVER_HOSTS))
    return [
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        x509.SubjectAlternativeName(entries),
    ]


def _host_entry(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise CertificateError(
            f"host {host!r} is neither an IP address nor a DNS name (labels of letters, digits "
            "and inner '-', joined by '.')"
        )
    return x509.DNSName(host.lower())


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise CertificateError(f"days must be between 1 and {MAX_DAYS}; got {days}")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _same_public_key(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def _load_ca(ca_dir: Path, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA's certificate and key, checked to match and to outlive a certificate of `days`."""
    cert_path, key_path = ca_dir / CA_CERT, ca_dir / CA_KEY
    for path in (cert_path, key_path):
        if not path.is_file():
            raise CertificateError(
                f"no CA in {ca_dir}: {path.name} is missing (make one: linkage certs init)"
            )
    cert = _parse_certs(_read_pem(cert_path, "CA certificate"), cert_path, "CA certificate")[0]
    key = _parse_key(_read_pem(key_path, "CA key"), key_path)
    if not _is_ca(cert):
        raise CertificateError(f"{cert_path} is not a CA certificate")
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _same_public_key(cert, key):
        raise CertificateError(f"{key_path} is not the EC private key of {cert_path}")
    expires = cert.not_valid_after_utc
    if dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days) > expires:
        raise CertificateError(
            f"the CA certificate expires on {expires:%Y-%m-%d}, before a certificate for "
            f"{days} days would; ask for fewer days or make a new CA"
        )
    return cert, key


def _read_pem(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_PEM_BYTES + 1)
    except FileNotFoundError:
        raise CertificateError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise CertificateError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(data) > _MAX_PEM_BYTES:
        raise CertificateError(f"{what} {path} is larger than 1 MiB; not a PEM file")
    if b"-----BEGIN " not in data:
        raise CertificateError(f"{what} {path} is not PEM (no '-----BEGIN' line)")
    return data


def _parse_certs(data: bytes, path: Path, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError(f"{what} {path} holds no valid PEM certificate") from None


def _parse_key(data: bytes, path: Path) -> PrivateKeyTypes:
    # `from None` throughout: nothing derived from the key's bytes goes into a traceback.
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CertificateError(
            f"private key {path} is encrypted; an unencrypted key is needed"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError(f"{path} holds no valid PEM private key") from None


def _refuse_existing(*paths: Path) -> None:
    for path in paths:
        if os.path.lexists(path):
            raise CertificateError(f"{path} already exists; refusing to overwrite it")


def _write_pair(files: CaFiles | IssuedFiles, cert: x509.Certificate, key: PrivateKeyTypes) -> None:
    """Key first (0600), then certificate; if the certificate cannot be written, no key stays."""
    try:
        files.key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise CertificateError(f"cannot create directory {files.key.parent}: {e.strerror}") from e
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(files.key, key_pem, 0o600)
    try:
        _write_new(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    except BaseException:
        files.key.unlink(missing_ok=True)
        raise


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError:
        raise CertificateError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as e:
        raise CertificateError(f"cannot create {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
