"""Names of the extensible kinds, in one import-free module: the CLI builds its choices from
these before numpy loads, and the registries (``core.features``, ``core.renderers``,
``training.models``, ``training.priors``) check that they serve exactly these names.
"""

FEATURE_NAMES = ("mel", "mel_db", "mfcc", "mel_db_pitch")
MODEL_NAMES = ("cnn", "lstm", "cnn2", "cnn3", "cnn3h")
RENDERER_KINDS = ("builtin", "vst", "renderman")
PATCH_PRIORS = ("uniform", "mixed", "instrumental")
