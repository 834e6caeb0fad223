"""Limits the front ends (CLI, OSC, daemon config) hold match requests to.

No imports: the CLI reads these while it builds its options, before numpy is loaded.
"""

MAX_CANDIDATES = 10  # presets per match: the match and up to 9 runners-up of the search
MAX_REFINE_SECONDS = 600.0  # search budget per match, for requests to the daemon

# Input files and buffers: hostile input must cost bounded memory and time (issue 14).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 384000  # Hz, for audio files, OSC buffers and recordings
MAX_AUDIO_SAMPLES = 32_000_000  # frames x channels decoded from a file (6 min of 44.1 kHz stereo)
MAX_PRESET_BYTES = 1_000_000  # a Diva .h2p is a few tens of KB, an amsynth bank ~170 KB
