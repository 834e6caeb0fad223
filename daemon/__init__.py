"""The resident service: config, job queue, drop folder, OSC, MIDI CC, recorder."""
