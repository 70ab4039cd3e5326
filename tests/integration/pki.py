"""A throwaway certificate authority for TLS tests, made at test time (keys never committed)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TestPki:
    ca_pem: Path  # the CA certificate: what clients trust
    server_pem: Path  # server chain + encrypted PKCS#8 key, as Kafka's PEM keystore wants
    key_password: str


def encrypted_pkcs8(key_pem: bytes, password: str) -> bytes:
    """The key as PKCS#8 encrypted with PBES1 (SHA1, 3DES): Kafka's PEM loader on Java 17 has no
    PBES2, which is what `cryptography` and `openssl pkcs8 -topk8` use by default."""
    result = subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-passout", "env:PKI_KEY_PASSWORD"],
        input=key_pem,
        capture_output=True,
        env={**os.environ, "PKI_KEY_PASSWORD": password},
        check=True,
    )
    return result.stdout


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path, key_password: str) -> TestPki:
    """A CA and a server certificate valid for 127.0.0.1 and localhost, for one day."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("genai-apm test CA"))
        .issuer_name(_name("genai-apm test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    directory.mkdir(parents=True, exist_ok=True)
    ca_pem = directory / "ca.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(pem))
    server_pem = directory / "server.pem"
    server_pem.write_bytes(
        server_cert.public_bytes(pem)
        + ca_cert.public_bytes(pem)
        + encrypted_pkcs8(
            server_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            key_password,
        )
    )
    server_pem.chmod(0o600)
    return TestPki(ca_pem, server_pem, key_password)
