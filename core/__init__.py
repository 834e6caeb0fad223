"""Pure, synchronous building blocks: profiles, renderers, audio, features, matching."""
