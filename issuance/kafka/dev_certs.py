"""A development certificate authority and broker certificate for the compose stack's SASL_SSL listeners.

The broker of docker-compose.yml serves TLS only; its clients trust exactly one CA
(ISSUANCE_KAFKA_SSL_CAFILE). For development and trials this module makes that CA and a broker certificate
naming the compose host names, in PEM, the way Kafka reads them (`ssl.keystore.type=PEM`: one file with the
unencrypted PKCS#8 key, the certificate and the CA's certificate). A deployment uses its own PKI instead;
nothing here is production key management. Private keys are written with mode 0600; an existing CA is kept
(clients keep trusting it) and only the broker certificate is issued again.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The names the broker is reached by: `kafka` on the compose network, localhost from the host.
DEFAULT_BROKER_HOSTS = ("kafka", "localhost", "127.0.0.1")
CA_CERT, CA_KEY = "ca.crt", "ca.key"
BROKER_CERT, BROKER_KEY, BROKER_KEYSTORE = "broker.crt", "broker.key", "broker.pem"
CA_DAYS = 3650
BROKER_DAYS = 365
PRIVATE = 0o600
PUBLIC = 0o644


@dataclass(frozen=True)
class DevelopmentTls:
    """Where the files were written, and whether the CA was made now or kept."""

    directory: Path
    ca_created: bool
    broker_hosts: tuple[str, ...]

    @property
    def ca_cert(self) -> Path:
        return self.directory / CA_CERT

    @property
    def broker_keystore(self) -> Path:
        return self.directory / BROKER_KEYSTORE


def write_development_tls(
    directory: Path, broker_hosts: Sequence[str] = DEFAULT_BROKER_HOSTS, *, now: dt.datetime | None = None
) -> DevelopmentTls:
    """Make (or keep) the CA in `directory` and issue a broker certificate for `broker_hosts` signed by it."""
    if not broker_hosts:
        raise ValueError("the broker certificate needs at least one host name")
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # the keys are 0600 anyway; the directory hides their names too
    ca_key, ca_cert, created = _ca(directory, now)
    broker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    broker_cert = _broker_certificate(broker_key, ca_key, ca_cert, tuple(broker_hosts), now)
    key_pem = broker_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = broker_cert.public_bytes(serialization.Encoding.PEM)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _write(directory / BROKER_KEY, key_pem, PRIVATE)
    _write(directory / BROKER_CERT, cert_pem + ca_pem, PUBLIC)
    _write(directory / BROKER_KEYSTORE, key_pem + cert_pem + ca_pem, PRIVATE)
    return DevelopmentTls(directory, created, tuple(broker_hosts))


def _ca(directory: Path, now: dt.datetime) -> tuple[rsa.RSAPrivateKey, x509.Certificate, bool]:
    """The CA kept in `directory`, else a new one."""
    key_path, cert_path = directory / CA_KEY, directory / CA_CERT
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} is not an RSA key")
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes()), False
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ssc-issuance development"),
            x509.NameAttribute(NameOID.COMMON_NAME, "ssc-issuance development Kafka CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _pkcs8(key), PRIVATE)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), PUBLIC)
    return key, cert, True


def _broker_certificate(
    key: rsa.RSAPrivateKey,
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    hosts: tuple[str, ...],
    now: dt.datetime,
) -> x509.Certificate:
    """A server certificate whose subject alternative names are the broker's host names and addresses."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=BROKER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _pkcs8(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write with `mode` from the first byte (a key is never readable by others, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # an existing file keeps its old mode through O_CREAT
