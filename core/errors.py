"""The one error hierarchy for problems a user can cause.

The CLI prints ``str(error)`` on one line and exits 2; nothing else should catch these
silently.
"""


class DeepDivaError(Exception):
    """Base class: a problem with the user's input, files or settings."""


class ProfileError(DeepDivaError):
    """Unknown parameter, set or malformed profile data."""


class ParameterValueError(DeepDivaError):
    """A parameter value that cannot be used (NaN, wrong shape, wrong type)."""


class PresetError(DeepDivaError):
    """A preset file that cannot be read or written."""


class RenderError(DeepDivaError):
    """A renderer that cannot be created or cannot render."""


class DatasetError(DeepDivaError):
    """A dataset folder that is missing, inconsistent or incompatible."""


class AudioError(DeepDivaError):
    """Audio input that cannot be used (unreadable, empty, silent, non-finite, too long)."""


class ModelError(DeepDivaError):
    """A model file or model card that is missing or inconsistent."""


class ConfigError(DeepDivaError):
    """An invalid configuration value."""


class MidiError(DeepDivaError):
    """A MIDI output that cannot be opened (unknown port, no MIDI system) or a bad CC setting."""
