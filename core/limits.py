"""Limits the front ends (CLI, OSC, daemon config) hold match requests to.

No imports: the CLI reads these while it builds its options, before numpy is loaded.
"""

MAX_CANDIDATES = 10  # presets per match: the match and up to 9 runners-up of the search
MAX_REFINE_SECONDS = 600.0  # search budget per match, for requests to the daemon
