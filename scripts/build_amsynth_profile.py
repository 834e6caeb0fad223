"""Rebuild core/profiles/amsynth.toml: every amsynth parameter, checked against the real plugin.

Run from the repository root:
    python scripts/build_amsynth_profile.py [--plugin /usr/lib/vst/amsynth_vst.so] [--out PATH]
    python scripts/build_amsynth_profile.py --no-verify    # write without a plugin

The table below is amsynth's own parameter specification (``ParameterSpecs`` in amsynth's
``src/core/synth/Parameter.cpp``, amsynth 1.13): the stored value ``v`` (what a preset file
holds) lies in ``[min, max]``, quantised to ``step`` when ``step > 0``, and the synth maps it
to a control value by a law (linear ``offset + base*v``, exponential ``offset + base**v``,
power ``offset + v**base``). amsynth's plugins take ``normalised = (v - min) / (max - min)``.

With DawDreamer installed and the plugin present, the script checks that the plugin has exactly
these names in this order (so profile ids are plugin indices), and that at normalised 0, 0.5
and 1 the plugin's displayed control value equals the law applied to the stored value: that
verifies the ranges, the laws and the linear mapping the VST renderer relies on.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path
from typing import NamedTuple

DEFAULT_PLUGIN = "/usr/lib/vst/amsynth_vst.so"
OUT = Path(__file__).resolve().parents[1] / "core" / "profiles" / "amsynth.toml"

OSC_WAVES = ("sine", "square / pulse", "triangle / saw", "white noise", "noise + sample & hold")
LFO_WAVES = ("sine", "square", "triangle", "noise", "noise + sample & hold", "sawtooth (up)",
             "sawtooth (down)")


class Spec(NamedTuple):
    name: str
    section: str
    default: float
    low: float
    high: float
    step: float
    law: str          # "lin", "exp" or "pow"
    base: float
    offset: float
    unit: str = ""
    labels: tuple[str, ...] | None = None


SPECS: tuple[Spec, ...] = (
    Spec("amp_attack", "amp_env", 0.0, 0.0, 2.5, 0.0, "pow", 3.0, 0.0005, "s"),
    Spec("amp_decay", "amp_env", 0.0, 0.0, 2.5, 0.0, "pow", 3.0, 0.0005, "s"),
    Spec("amp_sustain", "amp_env", 1.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("amp_release", "amp_env", 0.0, 0.0, 2.5, 0.0, "pow", 3.0, 0.0005, "s"),
    Spec("osc1_waveform", "osc1", 2.0, 0.0, 4.0, 1.0, "lin", 1.0, 0.0, labels=OSC_WAVES),
    Spec("filter_attack", "filter_env", 0.0, 0.0, 2.5, 0.0, "pow", 3.0, 0.0005, "s"),
    Spec("filter_decay", "filter_env", 0.0, 0.0, 2.5, 0.0, "pow", 3.0, 0.0005, "s"),
    Spec("filter_sustain", "filter_env", 1.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("filter_release", "filter_env", 0.0, 0.0, 2.5, 0.0, "pow", 3.0, 0.0005, "s"),
    Spec("filter_resonance", "filter", 0.0, 0.0, 0.97, 0.0, "lin", 1.0, 0.0),
    Spec("filter_env_amount", "filter", 0.0, -16.0, 16.0, 0.0, "lin", 1.0, 0.0),
    Spec("filter_cutoff", "filter", 1.5, -0.5, 1.5, 0.0, "exp", 16.0, 0.0, "x key frequency"),
    Spec("osc2_detune", "osc2", 0.0, -1.0, 1.0, 0.0, "exp", 1.25, 0.0, "ratio"),
    Spec("osc2_waveform", "osc2", 2.0, 0.0, 4.0, 1.0, "lin", 1.0, 0.0, labels=OSC_WAVES),
    Spec("master_vol", "amp", 0.67, 0.0, 1.0, 0.0, "pow", 2.0, 0.0),
    Spec("lfo_freq", "lfo", 0.0, 0.0, 7.5, 0.0, "pow", 2.0, 0.0, "Hz"),
    Spec("lfo_waveform", "lfo", 0.0, 0.0, 6.0, 1.0, "lin", 1.0, 0.0, labels=LFO_WAVES),
    Spec("osc2_range", "osc2", 0.0, -3.0, 4.0, 1.0, "exp", 2.0, 0.0, "ratio"),
    Spec("osc_mix", "mix", 0.0, -1.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("freq_mod_amount", "lfo", 0.0, 0.0, 1.25992105, 0.0, "pow", 3.0, -1.0),
    Spec("filter_mod_amount", "lfo", -1.0, -1.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("amp_mod_amount", "lfo", -1.0, -1.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("osc_mix_mode", "mix", 0.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("osc1_pulsewidth", "osc1", 1.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("osc2_pulsewidth", "osc2", 1.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("reverb_roomsize", "reverb", 0.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("reverb_damp", "reverb", 0.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("reverb_wet", "reverb", 0.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("reverb_width", "reverb", 1.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("distortion_crunch", "amp", 0.0, 0.0, 0.9, 0.0, "lin", 1.0, 0.0),
    Spec("osc2_sync", "osc2", 0.0, 0.0, 1.0, 1.0, "lin", 1.0, 0.0),
    Spec("portamento_time", "voice", 0.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0, "s"),
    Spec("keyboard_mode", "voice", 0.0, 0.0, 2.0, 1.0, "lin", 1.0, 0.0, labels=("poly", "mono", "legato")),
    Spec("osc2_pitch", "osc2", 0.0, -12.0, 12.0, 1.0, "lin", 1.0, 0.0, "semitones"),
    Spec("filter_type", "filter", 0.0, 0.0, 4.0, 1.0, "lin", 1.0, 0.0,
         labels=("low pass", "high pass", "band pass", "notch", "bypass")),
    Spec("filter_slope", "filter", 1.0, 0.0, 1.0, 1.0, "lin", 1.0, 0.0,
         labels=("12 dB / octave", "24 dB / octave")),
    Spec("freq_mod_osc", "lfo", 0.0, 0.0, 2.0, 1.0, "lin", 1.0, 0.0, labels=("osc 1+2", "osc 1", "osc 2")),
    Spec("filter_kbd_track", "filter", 1.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("filter_vel_sens", "filter", 1.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    Spec("amp_vel_sens", "amp", 1.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0),
    # amsynth gives this no step but truncates it to an int: below 1 means always (a few factory
    # presets hold fractions; read as the nearest label here).
    Spec("portamento_mode", "voice", 0.0, 0.0, 1.0, 0.0, "lin", 1.0, 0.0, labels=("always", "legato")),
)

# Named sets (by amsynth name). A default render holds the note for the whole render, so the
# release stages are left to larger sets. osc2_sync and the voice/portamento controls stay out
# of every set: sync keeps a phase across notes inside amsynth (not resettable by a host), and
# the others do nothing to a single held note.
SMALL = ("osc1_waveform", "osc2_waveform", "osc_mix", "filter_cutoff", "filter_resonance",
         "filter_env_amount", "filter_decay", "amp_attack")
MEDIUM = SMALL + ("osc1_pulsewidth", "osc2_range", "osc2_detune", "filter_type", "filter_attack",
                  "filter_sustain", "amp_decay", "amp_sustain")
NOT_LARGE = ("osc2_sync", "portamento_time", "keyboard_mode", "portamento_mode")
SETS = {
    "small": SMALL,
    "medium": MEDIUM,
    "large": tuple(s.name for s in SPECS if s.name not in NOT_LARGE),
}


def kind_of(spec: Spec) -> str:
    if spec.labels is not None:
        return "enumerated"
    return "integer" if spec.step > 0 else "continuous"


def control_value(spec: Spec, v: float) -> float:
    """amsynth's ``Parameter::getControlValue`` for stored value ``v``."""
    if spec.law == "lin":
        return spec.offset + spec.base * v
    if spec.law == "exp":
        return spec.offset + spec.base ** v
    return spec.offset + v ** spec.base


def stored_value(spec: Spec, normalised: float) -> float:
    """What amsynth stores for a plugin value: linear in the range, then snapped to the step."""
    v = spec.low + normalised * (spec.high - spec.low)
    if spec.step > 0:  # C roundf: halves away from zero
        v = spec.low + math.floor((v - spec.low) / spec.step + 0.5) * spec.step
    return v


def law_text(spec: Spec) -> str:
    body = {"lin": f"{spec.offset:g} + {spec.base:g}*v", "exp": f"{spec.offset:g} + {spec.base:g}^v",
            "pow": f"{spec.offset:g} + v^{spec.base:g}"}[spec.law]
    body = body.removeprefix("0 + ").replace("1*v", "v")
    return f"{body} {spec.unit}".rstrip()


def _num(x: float) -> str:
    return repr(float(x))


def _str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def param_lines(pid: int, spec: Spec, sets: list[str]) -> list[str]:
    kind = kind_of(spec)
    lines = [f"# control value = {law_text(spec)}", "[[param]]", f"id = {pid}", f"name = {_str(spec.name)}",
             f"plugin_name = {_str(spec.name)}", f"section = {_str(spec.section)}",
             f"key = {_str(spec.name)}", f'kind = "{kind}"']
    if kind == "enumerated":
        assert spec.labels is not None and len(spec.labels) == int(spec.high - spec.low) + 1
        lines.append("labels = [" + ", ".join(map(_str, spec.labels)) + "]")
    elif kind == "integer":
        lines += [f"min = {int(spec.low)}", f"max = {int(spec.high)}"]
    else:
        lines += [f"min = {_num(spec.low)}", f"max = {_num(spec.high)}"]
    lines.append(f"default = {_num(spec.default)}")
    lines.append("sets = [" + ", ".join(map(_str, sets)) + "]")
    return lines


def build_toml(version: str) -> str:
    ids = {s.name: i for i, s in enumerate(SPECS)}
    out = [
        "# amsynth synth profile: all 41 parameters of amsynth " + version + ", generated by",
        "# scripts/build_amsynth_profile.py (edit the table there and rebuild, not this file).",
        "# Values are amsynth's stored values, as in its preset and bank files; defaults are its init",
        "# patch. The plugin takes normalised = (v - min) / (max - min) (checked against the VST);",
        "# each comment gives the control value the synth derives from a stored value v.",
        "# Enumerated parameters are stored as the label's index.",
        'name = "amsynth"',
        'synth = "amsynth"',
        f'synth_version = "{version}"',
        'preset_format = "amSynth1.0preset"',
        'plugin_value_mapping = "linear"',
        'preset_precision = "float32"  # presets store each value as its shortest float32 text',
        "",
        "# Set during a renderer's flush note (native values): amsynth's triangle LFO keeps the",
        "# polarity of the last sawtooth LFO, so the flush selects sawtooth (down) to reset it.",
        "[flush]",
        f"lfo_waveform = {LFO_WAVES.index('sawtooth (down)')}",
        "",
        "[sets]",
    ]
    for set_name, names in SETS.items():
        out.append(f"{set_name} = [" + ", ".join(str(ids[n]) for n in sorted(names, key=lambda n: ids[n])) + "]")
    for pid, spec in enumerate(SPECS):
        sets = [k for k, names in SETS.items() if spec.name in names]
        out += [""] + param_lines(pid, spec, sets)
    return "\n".join(out) + "\n"


@contextlib.contextmanager
def _quiet():
    """Hosts and plugins print to the C stdout/stderr while loading; keep the output readable."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _leading_float(text: str) -> float | None:
    token = text.strip().split(" ")[0] if text.strip() else ""
    try:
        return float(token)
    except ValueError:
        return None


def verify(plugin: str) -> list[str]:
    """Differences between :data:`SPECS` and the plugin (empty when they agree)."""
    import dawdreamer as daw

    with _quiet():
        engine = daw.RenderEngine(44100, 512)
        synth = engine.make_plugin_processor("amsynth", plugin)
    names = [synth.get_parameter_name(i) for i in range(synth.get_plugin_parameter_size())]
    expected = [s.name for s in SPECS]
    if names != expected:
        return [f"plugin parameters {names} differ from the table {expected}"]
    problems = []
    initial = [synth.get_parameter(i) for i in range(len(SPECS))]
    differ = [s.name for s, x in zip(SPECS, initial, strict=True)
              if not math.isclose(x, (s.default - s.low) / (s.high - s.low), abs_tol=1e-6)]
    if differ:  # some builds start on the first bank's first preset: informative only
        print(f"note: the plugin's initial patch differs from the init patch in {differ}")
    for i, spec in enumerate(SPECS):
        for norm in (0.0, 0.5, 1.0):
            synth.set_parameter(i, norm)
            shown = _leading_float(synth.get_parameter_text(i))
            want = control_value(spec, stored_value(spec, norm))
            if shown is None:
                problems.append(f"{spec.name}: cannot read the displayed value {synth.get_parameter_text(i)!r}")
            elif not math.isclose(shown, want, rel_tol=2e-4, abs_tol=2e-4):
                problems.append(f"{spec.name} at {norm}: plugin shows {shown}, table gives {want:.6g}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plugin", default=DEFAULT_PLUGIN, help="amsynth VST2 .so to verify against")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--version", default="1.13.2", help="amsynth version the table describes")
    ap.add_argument("--no-verify", action="store_true", help="write without checking a plugin")
    args = ap.parse_args(argv)
    if not args.no_verify:
        if not Path(args.plugin).exists():
            print(f"no plugin at {args.plugin}; install amsynth or pass --plugin/--no-verify", file=sys.stderr)
            return 2
        problems = verify(args.plugin)
        if problems:
            print("the table does not match the plugin:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        print(f"verified {len(SPECS)} parameters against {args.plugin}")
    args.out.write_text(build_toml(args.version), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
