"""HTTPS for the web page when it listens beyond this machine.

Browsers let a page use the microphone only in a secure context: ``http://127.0.0.1`` is one,
``http://192.168.1.20`` (a phone on the same network) is not. So a page that listens beyond
loopback is served over HTTPS with a self-signed certificate, made once and kept beside the
journal (``web-cert.pem``, ``web-key.pem``, readable only by this user). The browser warns the
first time; the fingerprint printed at start lets a careful user check it is this daemon.
The certificate is made again when it no longer names this machine's addresses.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from ..core.atomic import write_bytes_atomic

CERT, KEY = "web-cert.pem", "web-key.pem"
VALID_DAYS = 3650


def ensure_certificate(folder: Path, names: list[str], addresses: list[str]) -> tuple[Path, Path]:
    """The page's certificate and key in ``folder``, covering ``names`` and ``addresses``."""
    cert, key = folder / CERT, folder / KEY
    if cert.is_file() and key.is_file() and _covers(cert, names, addresses):
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deepdiva web page")])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in dict.fromkeys(names)] + \
        [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(addresses)]
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                   .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .sign(private, hashes.SHA256()))
    write_bytes_atomic(key, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()), private=True)
    write_bytes_atomic(cert, certificate.public_bytes(serialization.Encoding.PEM), private=True)
    return cert, key


def _covers(cert: Path, names: list[str], addresses: list[str]) -> bool:
    from cryptography import x509

    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
        alt = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    have = {n.lower() for n in alt.get_values_for_type(x509.DNSName)} | \
        {str(a) for a in alt.get_values_for_type(x509.IPAddress)}
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    return {n.lower() for n in names} | set(addresses) <= have and loaded.not_valid_after_utc > soon


def fingerprint(cert: Path) -> str:
    """SHA-256 fingerprint as browsers show it (``AB:CD:...``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    digest = x509.load_pem_x509_certificate(cert.read_bytes()).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
