"""deepdiva: turn a target sound into a u-he Diva preset."""

__version__ = "0.1.0"
