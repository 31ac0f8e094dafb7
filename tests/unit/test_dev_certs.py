"""The development CA and broker certificate of the compose stack, and its principals' passwords."""

from __future__ import annotations

import stat
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from issuance.kafka.dev_certs import write_development_tls
from issuance.kafka.dev_passwords import PASSWORD_PATTERN, password_variable, write_passwords


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _certs(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tls")
    write_development_tls(directory, ("kafka", "localhost", "127.0.0.1"))
    return directory


def test_broker_certificate_verifies_against_the_ca_for_every_compose_host(tls_dir: Path) -> None:
    ca = x509.load_pem_x509_certificate((tls_dir / "ca.crt").read_bytes())
    leaf, *chain = _certs((tls_dir / "broker.crt").read_bytes())
    policy = PolicyBuilder().store(Store([ca]))
    for name in (x509.DNSName("kafka"), x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))):
        policy.build_server_verifier(name).verify(leaf, chain)
    with pytest.raises(VerificationError):
        policy.build_server_verifier(x509.DNSName("evil.example")).verify(leaf, chain)


def test_subject_alternative_names_are_the_hosts(tls_dir: Path) -> None:
    leaf = _certs((tls_dir / "broker.crt").read_bytes())[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["kafka", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1")]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_keys_are_private_and_the_keystore_holds_the_matching_key_and_chain(tls_dir: Path) -> None:
    for name in ("ca.key", "broker.key", "broker.pem"):
        assert _mode(tls_dir / name) == 0o600, name
    assert _mode(tls_dir / "ca.crt") == 0o644
    assert _mode(tls_dir) == 0o700
    keystore = (tls_dir / "broker.pem").read_bytes()
    assert keystore.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted: what Kafka's PEM reads
    key = load_pem_private_key(keystore, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    leaf, ca = _certs(keystore)
    signature = key.sign(b"probe", padding.PKCS1v15(), leaf.signature_hash_algorithm)  # type: ignore[arg-type]
    public = leaf.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"probe", padding.PKCS1v15(), leaf.signature_hash_algorithm)  # type: ignore[arg-type]
    assert ca.subject == leaf.issuer


def test_an_existing_ca_is_kept_and_the_broker_certificate_issued_again(tmp_path: Path) -> None:
    first = write_development_tls(tmp_path, ("kafka",))
    ca_before = (tmp_path / "ca.crt").read_bytes()
    broker_before = (tmp_path / "broker.crt").read_bytes()
    second = write_development_tls(tmp_path, ("kafka", "broker.internal"))
    assert first.ca_created and not second.ca_created
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    assert (tmp_path / "broker.crt").read_bytes() != broker_before
    leaf = _certs((tmp_path / "broker.crt").read_bytes())[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["kafka", "broker.internal"]


def test_passwords_are_random_private_and_kept(tmp_path: Path) -> None:
    env = tmp_path / "kafka.env"
    added = write_passwords(env, ["admin", "bank-icbc"])
    assert added == ["KAFKA_PASSWORD_ADMIN", "KAFKA_PASSWORD_BANK_ICBC"]
    first = env.read_text()
    assert _mode(env) == 0o600
    values = dict(line.split("=", 1) for line in first.splitlines())
    assert all(PASSWORD_PATTERN.fullmatch(value) for value in values.values())
    assert len(set(values.values())) == 2
    assert write_passwords(env, ["admin", "bank-icbc", "consumer"]) == ["KAFKA_PASSWORD_CONSUMER"]
    assert env.read_text().startswith(first)


def test_principal_names_map_to_variables() -> None:
    assert password_variable("branch-gateway") == "KAFKA_PASSWORD_BRANCH_GATEWAY"
    with pytest.raises(ValueError):
        password_variable("Bank ICBC")
