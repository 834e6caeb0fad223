"""Who may use the web page: Host, Origin and token rules, as pure checks on request headers.

- **Host** (every request): only names that mean this machine. Loopback names always; when the
  page listens beyond loopback also IP literals and this machine's host name. A page of another
  site whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name: refused.
- **Token** (every request, when listening beyond loopback): the one printed at start, from the
  URL (``?token=``), the ``X-Deepdiva-Token`` header or the cookie the page sets.
- **Origin** (every request that changes anything): present and this very origin, so another
  web site open in the same browser cannot post to the daemon (no CSRF).
- **Sec-Fetch-Site** (API requests): ``cross-site`` is refused, so other sites cannot even embed
  results.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..core.atomic import write_bytes_atomic

SAFE_METHODS = frozenset({"GET", "HEAD"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
TOKEN_HEADER = "X-Deepdiva-Token"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def split_host(header: str) -> tuple[str, int | None] | None:
    """``name[:port]`` / ``[v6][:port]`` -> (lower-case name, port); None if malformed."""
    header = header.strip().lower()
    if not header:
        return None
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        name, rest = header[1:end], header[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    else:
        name, _, port_text = header.partition(":")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        return name, int(port_text)
    return name, None


def machine_names() -> frozenset[str]:
    """This machine's own names (``host``, ``host.local``), lower case."""
    name = socket.gethostname().lower()
    return frozenset({name, f"{name}.local"} - {""})


def lan_address() -> str | None:
    """This machine's address on its local network (no packet is sent), for the URL printed at start."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: only picks the outgoing interface
            return str(s.getsockname()[0])
    except OSError:
        return None


def load_token(path: Path) -> str:
    """The page's token, kept in ``path`` (made on first use, readable only by this user)."""
    try:
        token = path.read_text(encoding="ascii").strip()
        if len(token) >= 16:
            return token
    except (OSError, UnicodeDecodeError):
        pass
    token = secrets.token_urlsafe(18)
    write_bytes_atomic(path, (token + "\n").encode("ascii"), private=True)
    return token


@dataclass(frozen=True)
class Guard:
    """The rules for one listening page: its bind ``host`` and ``port``; ``token`` None = not required."""

    host: str
    port: int
    token: str | None = None
    names: frozenset[str] = field(default_factory=machine_names)

    @property
    def cookie(self) -> str:
        return f"deepdiva-token-{self.port}"

    def host_allowed(self, header: str | None) -> bool:
        parsed = split_host(header or "")
        if parsed is None:
            return False
        name, port = parsed
        if port is not None and port != self.port:
            return False
        if name in LOOPBACK_NAMES:
            return True
        if is_loopback(self.host):
            return False
        try:
            ipaddress.ip_address(name)
            return True  # an address literal cannot be re-pointed by DNS
        except ValueError:
            return name in self.names

    def token_ok(self, given: str | None) -> bool:
        if self.token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def refusal(self, method: str, path: str, headers: dict[str, str], token: str | None,
                scheme: str = "http") -> str | None:
        """Why this request is refused (403), or None. ``headers``: lower-case names."""
        host = headers.get("host")
        if not self.host_allowed(host):
            return "wrong Host: open the page by this machine's address"
        if not self.token_ok(token):
            return "missing or wrong token: open the URL 'deepdiva serve' printed (it ends in ?token=...)"
        if path.startswith("/api/") and headers.get("sec-fetch-site") == "cross-site":
            return "requests from other web sites are refused"
        if method not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is None or origin.lower() != f"{scheme}://{(host or '').lower()}":
                return "refused: this request must come from the deepdiva page itself (Origin)"
        return None
