"""Preset file formats (Diva .h2p, amsynth) and preset folders."""
