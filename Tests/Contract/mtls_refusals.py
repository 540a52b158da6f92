#!/usr/bin/env python3
"""Client certificates the listener must refuse (QUALITY.md, TLS).

Usage: mtls_refusals.py PKI_DIR HOST PORT SCRATCH_DIR

Tries GET /healthz with: the admin certificate (the control: must answer),
no certificate, an expired certificate issued by the development CA for the
admin identity, and a certificate for the admin identity from another CA.
Each refusal must happen in TLS: any HTTP answer is a failure. Prints one
"ok ..." or "FAIL ..." line per case; exits 1 if any case failed.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ADMIN_URI = "spiffe://bindery.local/admin"


def write_pair(directory: Path, name: str, cert: x509.Certificate, key) -> tuple[Path, Path]:
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def client_cert(issuer_name, issuer_key, not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ADMIN_URI)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert, key


def attempt(host: str, port: int, ca: Path, cert: Path | None, key: Path | None) -> str:
    """'http <status line>' when the server answered, else 'refused: <why>'."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while b"\r\n" not in data:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    data += chunk
    except (ssl.SSLError, ConnectionError, OSError) as error:
        return f"refused: {error.__class__.__name__}: {error}"
    if data.startswith(b"HTTP/"):
        return "http " + data.split(b"\r\n", 1)[0].decode("latin-1")
    return f"refused: connection closed with {len(data)} bytes and no HTTP answer"


def main() -> int:
    pki, host, port, scratch = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    scratch.mkdir(parents=True, exist_ok=True)
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca-key.pem").read_bytes(), password=None)
    now = datetime.datetime.now(datetime.timezone.utc)

    expired = write_pair(scratch, "expired", *client_cert(
        ca_cert.subject, ca_key, now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)))
    other_ca_key = ec.generate_private_key(ec.SECP256R1())
    other_ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bindery development CA")])
    other = write_pair(scratch, "other-ca", *client_cert(
        other_ca_name, other_ca_key, now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)))

    ca = pki / "ca.pem"
    failures = 0
    control = attempt(host, port, ca, pki / "admin.pem", pki / "admin-key.pem")
    if control.startswith("http ") and " 200" in control:
        print(f"ok     admin certificate answered: {control}")
    else:
        print(f"FAIL   admin certificate (control) got no 200: {control}")
        failures += 1
    for name, cert, key in [
        ("no client certificate", None, None),
        ("expired certificate from the development CA", *expired),
        ("certificate from another CA (same subject name as the development CA)", *other),
    ]:
        outcome = attempt(host, port, ca, cert, key)
        if outcome.startswith("refused"):
            print(f"ok     {name}: {outcome}")
        else:
            print(f"FAIL   {name} was served: {outcome}")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
