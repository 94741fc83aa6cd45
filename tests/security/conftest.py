"""Certificates (a CA, a server, clients) and tokens for the security tests, made per session."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lanesight.common.auth import hash_token


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files the tests use."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    rogue_client_cert: Path  # signed by other_ca, which the server does not trust
    rogue_client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
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
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    common_name: str,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA with a server certificate (localhost, 127.0.0.1) and a client certificate,
    plus a second CA with a client certificate the server must not accept."""
    folder = tmp_path_factory.mktemp("pki")
    ca = _make_ca("lanesight test CA")
    other = _make_ca("somebody else's CA")
    server = _make_leaf(
        ca,
        "fusion",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client = _make_leaf(ca, "device-lane-1", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    rogue = _make_leaf(other, "device-lane-1", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    pki = Pki(
        ca=folder / "ca.crt",
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        client_cert=folder / "client.crt",
        client_key=folder / "client.key",
        other_ca=folder / "other-ca.crt",
        rogue_client_cert=folder / "rogue.crt",
        rogue_client_key=folder / "rogue.key",
    )
    _write_cert(pki.ca, ca[0])
    _write_cert(pki.other_ca, other[0])
    _write_cert(pki.server_cert, server[0])
    _write_key(pki.server_key, server[1])
    _write_cert(pki.client_cert, client[0])
    _write_key(pki.client_key, client[1])
    _write_cert(pki.rogue_client_cert, rogue[0])
    _write_key(pki.rogue_client_key, rogue[1])
    return pki


#: name -> (token, role, stores); the tokens file lists only their hashes.
TOKENS = {
    "lane-a": ("lst_lane-a-9b1f0c7e5d2a4e8f", "lane_agent", ["store-a"]),
    "attendant-a": ("lst_attendant-a-c3e8a1d94b7f", "attendant", ["store-a"]),
    "pos-a": ("lst_pos-a-7d2e9f1a0b3c4d5e", "pos", ["store-a"]),
    "manager-chain": ("lst_manager-chain-0a9b8c7d6e", "manager", ["*"]),
}


def token(name: str) -> str:
    """The plaintext token of a test identity."""
    return TOKENS[name][0]


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    """A YAML tokens file holding the SHA-256 digests of TOKENS."""
    lines = ["tokens:"]
    for name, (secret, role, stores) in TOKENS.items():
        store_list = ", ".join(f'"{s}"' for s in stores)
        lines += [
            f"  - name: {name}",
            f"    role: {role}",
            f"    stores: [{store_list}]",
            f"    sha256: {hash_token(secret)}",
        ]
    path = tmp_path / "tokens.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path
