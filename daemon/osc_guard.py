"""Check an OSC packet's structure before python-osc parses it.

python-osc trusts a bundle's element sizes: a size of -4 makes its bundle parser loop forever
(one 20-byte packet stops a UDP server for good), and others read past the packet. Every bundle
element must have a positive size, a multiple of 4, inside the packet, and bundles nest at most
:data:`MAX_DEPTH` deep. Pure: bytes in, a reason (or None) out.
"""

from __future__ import annotations

BUNDLE_PREFIX = b"#bundle\x00"
HEADER = len(BUNDLE_PREFIX) + 8  # prefix + time tag
MAX_DEPTH = 4


def packet_problem(data: bytes, depth: int = 0) -> str | None:
    """Why ``data`` is not a well-formed OSC packet's framing, or None. Messages are left to the
    parser (it rejects bad ones with an exception); only bundle framing is checked here."""
    if not data.startswith(BUNDLE_PREFIX):
        return None if data.startswith(b"/") else "not an OSC message or bundle"
    if depth >= MAX_DEPTH:
        return f"bundles nested more than {MAX_DEPTH} deep"
    if len(data) < HEADER:
        return "a bundle shorter than its header"
    index = HEADER
    while index < len(data):
        if index + 4 > len(data):
            return "a bundle element size cut off"
        size = int.from_bytes(data[index:index + 4], "big", signed=True)
        if size <= 0 or size % 4 or index + 4 + size > len(data):
            return f"a bundle element of {size} bytes (must be > 0, a multiple of 4, inside the packet)"
        problem = packet_problem(data[index + 4:index + 4 + size], depth + 1)
        if problem:
            return problem
        index += 4 + size
    return None
