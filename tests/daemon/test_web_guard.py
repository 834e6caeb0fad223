"""The web page's request rules as pure checks (the real-socket tests are in test_web.py)."""

from __future__ import annotations

import pytest

from deepdiva.daemon.web_guard import Guard, load_token, split_host


@pytest.mark.parametrize("header, parsed", [
    ("127.0.0.1:9003", ("127.0.0.1", 9003)), ("LOCALHOST:9003", ("localhost", 9003)), ("[::1]:9003", ("::1", 9003)),
    ("studio.local", ("studio.local", None)), ("[::1]", ("::1", None)),
    ("", None), ("a:b", None), ("a:0", None), ("a:70000", None), ("[::1", None), ("[::1]x", None),
])
def test_split_host(header: str, parsed: tuple | None) -> None:
    assert split_host(header) == parsed


def test_loopback_page_takes_only_loopback_names() -> None:
    guard = Guard("127.0.0.1", 9003, names=frozenset({"studio"}))
    assert guard.host_allowed("127.0.0.1:9003") and guard.host_allowed("localhost:9003")
    assert guard.host_allowed("[::1]:9003")
    for host in ("studio:9003", "192.168.1.5:9003", "evil.example:9003", "127.0.0.1:9004", None, "x y"):
        assert not guard.host_allowed(host), host


def test_lan_page_takes_addresses_and_its_own_names() -> None:
    guard = Guard("0.0.0.0", 9003, token="t" * 24, names=frozenset({"studio", "studio.local"}))
    for host in ("192.168.1.5:9003", "[fe80::1]:9003", "studio.local:9003", "localhost:9003"):
        assert guard.host_allowed(host), host
    assert not guard.host_allowed("evil.example:9003")


def test_refusals() -> None:
    guard = Guard("0.0.0.0", 9003, token="t" * 24, names=frozenset())
    same = {"host": "10.0.0.2:9003", "origin": "http://10.0.0.2:9003"}
    assert guard.refusal("POST", "/api/upload", same, "t" * 24) is None
    assert "token" in guard.refusal("POST", "/api/upload", same, None)
    assert "token" in guard.refusal("GET", "/", {"host": "10.0.0.2:9003"}, "t" * 23 + "u")
    assert "Origin" in guard.refusal("POST", "/api/upload", {**same, "origin": "http://10.0.0.3:9003"}, "t" * 24)
    assert "Origin" in guard.refusal("POST", "/api/upload", {"host": "10.0.0.2:9003"}, "t" * 24)
    assert "Origin" in guard.refusal("POST", "/api/upload", same, "t" * 24, scheme="https")
    assert "other web sites" in guard.refusal("GET", "/api/state", {**same, "sec-fetch-site": "cross-site"}, "t" * 24)
    assert guard.refusal("GET", "/", {**same, "sec-fetch-site": "cross-site"}, "t" * 24) is None  # a link to the page


def test_token_is_kept_private_and_reused(tmp_path) -> None:
    first = load_token(tmp_path / "web-token")
    assert len(first) >= 16 and load_token(tmp_path / "web-token") == first
    assert (tmp_path / "web-token").stat().st_mode & 0o077 == 0
