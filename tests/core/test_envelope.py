"""The amp envelope follower: attack, decay and sustain read from a note's level."""

from __future__ import annotations

import numpy as np
import pytest

from deepdiva.core.builtin_renderer import BuiltinRenderer
from deepdiva.core.builtin_synth import env_time
from deepdiva.core.envelope import (
    amp_envelope,
    amp_envelope_columns,
    knob,
    noise_floor,
    noise_tail,
    with_envelope,
    with_release,
)
from deepdiva.core.profile import load_profile

SR = 44100


def tone(envelope: np.ndarray, hz: float = 220.0) -> np.ndarray:
    t = np.arange(len(envelope)) / SR
    return (0.5 * envelope * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def shaped(attack: float, decay: float, sustain: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    rise = np.clip(t / attack, 0, 1)
    fall = sustain + (1 - sustain) * np.exp(-np.maximum(t - attack, 0) / decay)
    return tone(np.where(t < attack, rise, fall))


@pytest.mark.parametrize("decay", [0.05, 0.2, 0.5])
def test_a_note_that_dies_away_has_no_sustain_and_its_decay(decay: float) -> None:
    env = amp_envelope(shaped(0.01, decay, 0.0), SR)
    assert env is not None and env.dies_away and env.sustain == 0.0
    assert env.decay == pytest.approx(decay, rel=0.15)
    assert env.attack == pytest.approx(0.01, abs=0.012)


def test_a_note_that_decays_to_a_sustain() -> None:
    env = amp_envelope(shaped(0.005, 0.15, 0.25), SR)
    assert env is not None and not env.dies_away
    assert env.sustain == pytest.approx(0.25, rel=0.1)
    assert env.decay == pytest.approx(0.15, rel=0.2)


def test_a_held_note_and_a_slow_attack() -> None:
    env = amp_envelope(shaped(0.6, 1.0, 1.0), SR)
    assert env is not None and env.decay is None and env.sustain is None
    assert env.attack == pytest.approx(0.6, rel=0.1)


def test_silence_and_a_clip_too_short_to_tell() -> None:
    assert amp_envelope(np.zeros(2 * SR, np.float32), SR) is None
    assert amp_envelope(shaped(0.01, 0.1, 0.0, seconds=0.8), SR) is None


def test_knob_inverts_the_builtin_synths_envelope_times() -> None:
    for v in (0.0, 12.5, 50.0, 87.0, 100.0):
        assert knob(env_time(v)) == pytest.approx(v, abs=1e-9)
    assert knob(1e-9) == 0.0 and knob(1e6) == 100.0


def test_measured_envelope_rendered_again_measures_the_same() -> None:
    pset = load_profile("diva").parameter_set("medium33")
    renderer = BuiltinRenderer(pset)
    columns = list(amp_envelope_columns(pset) or ())
    assert len(columns) == 3
    truth = pset.defaults_normalised()
    truth[columns] = 0.2, 0.55, 0.0  # 6 ms attack, 0.16 s decay, dies away
    note = renderer.render(truth[None, :], 45.0)[0]
    env = amp_envelope(note, SR)
    assert env is not None and env.dies_away
    fitted = with_envelope(pset, pset.defaults_normalised()[None, :], env)
    assert fitted is not None and fitted[0, columns[2]] == 0.0
    assert abs(fitted[0, columns[1]] - 0.55) < 0.03  # the decay knob within 3 of 100
    again = amp_envelope(renderer.render(fitted, 45.0)[0], SR)
    assert again is not None and again.decay == pytest.approx(env.decay, rel=0.1)


def test_a_set_without_amp_envelope_roles_is_left_alone() -> None:
    pset = load_profile("amsynth").parameter_set("medium")
    env = amp_envelope(shaped(0.01, 0.2, 0.0), SR)
    assert env is not None
    assert with_envelope(pset, np.full((1, len(pset)), 0.5), env) is None


def let_go(held_for: float, release: float, attack: float = 0.02, seconds: float = 2.0) -> np.ndarray:
    """A note held at full level for ``held_for`` s, then falling with time constant ``release``."""
    t = np.arange(int(seconds * SR)) / SR
    level = np.where(t < held_for, np.clip(t / attack, 0, 1), np.exp(-(t - held_for) / release))
    return tone(level)


@pytest.mark.parametrize("held_for", [0.4, 0.7, 1.2, 1.6])
def test_a_held_note_let_go_early_is_held_and_its_note_off_and_release_are_heard(held_for: float) -> None:
    env = amp_envelope(let_go(held_for, 0.08), SR)
    assert env is not None and env.decay is None and env.sustain is None and not env.dies_away
    assert env.note_off == pytest.approx(held_for, abs=0.03)
    assert env.release == pytest.approx(0.08, rel=0.25)


@pytest.mark.parametrize("attack, held_for", [(1.5, 1.0), (1.0, 1.0), (0.6, 1.3)])
def test_a_swell_let_go_at_its_peak_is_let_go(attack: float, held_for: float) -> None:
    """A pad let go while still rising, or as it reaches full level (a reversed cymbal): its fall
    begins at the peak, where a pluck's would too, but nothing else falls that fast after a swell."""
    env = amp_envelope(let_go(held_for, 0.05, attack=attack), SR)
    assert env is not None and env.note_off == pytest.approx(held_for, abs=0.03)
    assert env.release == pytest.approx(0.05, rel=0.3)


def test_a_swell_that_falls_into_a_tremolo_has_no_note_off() -> None:
    """After the swell the level drops 14 dB and then swings between -14 and -26 dB: it falls as
    a note-off would and never comes back near the peak, but it rises again."""
    t = np.arange(2 * SR) / SR
    after = 0.125 + 0.075 * np.cos(2 * np.pi * 3.0 * (t - 0.8))
    assert amp_envelope(tone(np.where(t < 0.8, t / 0.8, after)), SR).note_off is None


def test_plucks_tremolo_and_notes_held_to_the_end_have_no_note_off() -> None:
    assert amp_envelope(shaped(0.005, 0.3, 0.0), SR).note_off is None  # a pluck falls as fast throughout
    assert amp_envelope(shaped(0.01, 0.2, 0.4), SR).note_off is None  # decays to a sustain and holds
    t = np.arange(2 * SR) / SR
    tremolo = 0.6 + 0.4 * np.sin(2 * np.pi * 5.0 * t)  # 14 dB dips that come back
    assert amp_envelope(tone(np.clip(t / 0.02, 0, 1) * tremolo), SR).note_off is None
    held = amp_envelope(shaped(0.05, 1.0, 1.0), SR)
    assert held.note_off is None and held.release is None


def test_a_let_go_note_writes_full_sustain_and_its_release_on_the_decay_knob() -> None:
    pset = load_profile("diva").parameter_set("medium33")
    attack, decay, sustain = amp_envelope_columns(pset)
    env = amp_envelope(let_go(0.7, 0.05), SR)
    answer = pset.defaults_normalised()[None, :].copy()
    answer[0, sustain] = 0.2  # an answer that would fall while the key is held
    fitted = with_envelope(pset, answer, env)
    assert fitted[0, sustain] == 1.0 and abs(fitted[0, decay] - knob(0.05) / 100) < 0.01


def test_a_match_lets_go_where_the_target_was_let_go() -> None:
    """A held saw-like note recorded for 0.6 s: every render of its match lets go at 0.6 s, so the
    answer is compared (and previewed) as played, and its preset holds while the key is held."""
    from deepdiva.core.matcher import Matcher

    matcher = Matcher.load()
    t = np.arange(2 * SR) / SR
    f0 = 220.0
    k = np.arange(1, int(16000 // f0) + 1)
    wave = (np.sin(2 * np.pi * f0 * np.outer(t, k)) / k).sum(axis=1)
    level = np.where(t < 0.6, np.clip(t / 0.01, 0, 1), np.exp(-(t - 0.6) / 0.05))
    note = (0.3 * wave / np.abs(wave).max() * level).astype(np.float32)
    assert matcher.note_length(note) == pytest.approx(0.6, abs=0.03)
    match = matcher.match(note)
    assert match.note_length == matcher.note_length(note) and match.as_dict(matcher.parameter_set)[
        "played_at"]["held_for"] == pytest.approx(0.6, abs=0.03)
    tail = match.audio[int(1.2 * SR):]
    assert np.sqrt(np.mean(tail ** 2)) < 1e-3 * np.sqrt(np.mean(match.audio[: int(0.5 * SR)] ** 2))
    native = dict(zip([p.location for p in matcher.parameter_set.parameters], match.native, strict=True))
    assert native["ENV1:Sus"] == 100.0


@pytest.mark.parametrize("held_for", [1.9, 2.0, 2.5, 3.5])
def test_a_note_held_past_its_window_is_heard_let_go_in_what_the_take_holds_after_it(held_for: float) -> None:
    """The window is 2 s; the take goes on for 3 s more. A note-off in the window's last 0.3 s (too
    short a stretch to tell a fall from a dip) or after it is read there; without the rest of the
    take the note is held."""
    take = let_go(held_for, 0.1, seconds=5.0)
    note, after = take[: 2 * SR], take[2 * SR:]
    assert amp_envelope(note, SR).note_off is None
    env = amp_envelope(note, SR, after=after)
    assert env is not None and env.decay is None and env.sustain is None
    assert env.note_off == pytest.approx(held_for, abs=0.03)
    assert env.release == pytest.approx(0.1, rel=0.25)


def test_what_follows_the_window_changes_nothing_when_the_note_is_let_go_in_it_or_never() -> None:
    early = let_go(0.7, 0.05, seconds=5.0)
    assert amp_envelope(early[: 2 * SR], SR, after=early[2 * SR:]) == amp_envelope(early[: 2 * SR], SR)
    held = shaped(0.05, 1.0, 1.0, seconds=5.0)
    assert amp_envelope(held[: 2 * SR], SR, after=held[2 * SR:]).note_off is None
    pluck = shaped(0.005, 0.6, 0.0, seconds=5.0)  # still falling at 2 s, as fast after it
    assert amp_envelope(pluck[: 2 * SR], SR, after=pluck[2 * SR:]).note_off is None
    t = np.arange(5 * SR) / SR  # a second note follows the first's release: not a note-off that holds
    riff = np.where(t < 2.5, np.clip(t / 0.02, 0, 1), 0.0) + np.where(t >= 2.8, 1.0, 0.0)
    assert amp_envelope(tone(riff[: 2 * SR]), SR, after=tone(riff)[2 * SR:]).note_off is None


def test_a_release_goes_on_the_decay_knob_only_of_answers_that_hold_at_full_sustain() -> None:
    """Diva's ADS envelope releases at its decay time: at full sustain the decay is never heard
    before the note-off, so a release heard after every render's end can go there; an answer that
    falls to a lower sustain while the key is held keeps its decay."""
    pset = load_profile("diva").parameter_set("medium33")
    attack, decay, sustain = amp_envelope_columns(pset)
    answers = np.tile(pset.defaults_normalised(), (2, 1))
    answers[:, decay] = 1.0  # a 25 s release
    answers[0, sustain], answers[1, sustain] = 1.0, 0.6
    released = with_release(pset, answers, 0.05)
    assert abs(released[0, decay] - knob(0.05) / 100) < 0.01 and released[1, decay] == 1.0
    assert np.array_equal(np.delete(released, decay, axis=1), np.delete(answers, decay, axis=1))
    renderer = BuiltinRenderer(pset)  # the 2 s a match renders: not a sample changes
    before, after = renderer.render(np.stack([answers[0], released[0]]), 57.0)
    assert np.array_equal(before, after)
    amsynth = load_profile("amsynth").parameter_set("medium")  # no roles: left alone
    assert np.array_equal(with_release(amsynth, np.full((1, len(amsynth)), 0.5), 0.05), np.full((1, len(amsynth)), 0.5))


def test_a_match_of_a_note_held_past_its_window_writes_the_release_heard_after_it() -> None:
    """A held saw let go at 2.5 s with a 60 ms release, as a 5 s take: the match's renders (2 s)
    and its distance are those of the first 2 s alone, an answer held at full sustain releases as
    the take did instead of whatever its decay knob held, and the preview plays the whole take's
    length, let go at 2.5 s."""
    from deepdiva.core.audio import AudioClip, prepare_take
    from deepdiva.core.matcher import Matcher

    matcher = Matcher.load()
    pset = matcher.parameter_set
    t = np.arange(5 * SR) / SR
    k = np.arange(1, int(16000 // 220.0) + 1)
    wave = (np.sin(2 * np.pi * 220.0 * np.outer(t, k)) / k).sum(axis=1)
    level = np.where(t < 2.5, np.clip(t / 0.01, 0, 1), np.exp(-(t - 2.5) / 0.06))
    take = prepare_take(AudioClip((0.3 * wave / np.abs(wave).max() * level).astype(np.float32), SR))
    before = matcher.match(take.note, lead_in=take.lead_in)
    after = matcher.match(take.note, lead_in=take.lead_in, after=take.after)
    assert after.note_length is None and after.distance == before.distance
    assert before.let_go_at is None and before.release is None
    played_at = after.as_dict(matcher.parameter_set)["played_at"]
    assert played_at["let_go_at"] == pytest.approx(2.5, abs=0.03) and played_at["held_for"] is None
    assert played_at["release"] == pytest.approx(0.06, rel=0.25)
    # its preview is as long as the take, the match's own 2 s render first, then let go where the take was
    assert after.audio.size == 5 * SR and np.array_equal(after.audio[: before.audio.size], before.audio)
    rms = [float(np.sqrt(np.mean(after.audio[int(a * SR): int(b * SR)] ** 2))) for a, b in ((2.0, 2.4), (3.0, 5.0))]
    assert rms[1] < 1e-3 * rms[0]
    columns = amp_envelope_columns(pset)
    assert columns is not None
    _, decay, sustain = columns
    assert after.native[sustain] == 100.0  # a held saw: the choice holds at full sustain
    assert after.native[decay] == pytest.approx(knob(0.06), abs=3.0)
    assert np.array_equal(np.delete(after.params, decay), np.delete(before.params, decay))


def hissing(note: np.ndarray, below_db: float, seed: int = 0) -> np.ndarray:
    """``note`` with white noise ``below_db`` under its RMS level, from its first sample to its last."""
    noise = np.random.default_rng(seed).standard_normal(note.size)
    return (note + np.sqrt(np.mean(note ** 2)) * 10 ** (-below_db / 20) * noise).astype(np.float32)


def test_a_take_let_go_into_its_recordings_hiss_ends_in_a_noise_floor() -> None:
    take = hissing(let_go(1.0, 0.05), 30.0)
    start = noise_tail(take, SR)
    assert start is not None and 1.0 * SR < start < 1.4 * SR  # after the release, to the end


def test_no_noise_floor_in_clean_notes_held_notes_falling_tails_or_a_sustained_tone() -> None:
    assert noise_tail(let_go(1.0, 0.05), SR) is None  # digital silence after the release
    assert noise_tail(hissing(shaped(0.05, 1.0, 1.0), 30.0), SR) is None  # the note sounds to the end
    assert noise_tail(hissing(shaped(0.005, 0.5, 0.0), 60.0), SR) is None  # still falling at the end
    assert noise_tail(shaped(0.01, 0.1, 0.1), SR) is None  # a sustain 20 dB down: partials, not hiss


def test_a_held_takes_noise_floor_is_read_from_its_lead_in() -> None:
    """Held to the end, the note never leaves its hiss alone; the half second the take held before
    it does (the hiss only, or with a slow attack's first rise at its end)."""
    rng = np.random.default_rng(2)
    held = hissing(shaped(0.05, 1.0, 1.0), 30.0)
    hiss = np.sqrt(np.mean(held ** 2)) * 10 ** (-30 / 20) * rng.standard_normal(SR // 2).astype(np.float32)
    assert noise_floor(held, SR) is None
    floor = noise_floor(held, SR, lead_in=hiss)
    assert floor is not None and floor.size >= 0.4 * SR
    rising = hiss + tone(np.linspace(0, 0.05, hiss.size) ** 3)  # the attack's first rise, under the onset threshold
    assert noise_floor(held, SR, lead_in=rising) is not None
    assert noise_floor(held, SR, lead_in=hiss[: SR // 10]) is None  # too short to tell
    assert noise_floor(held, SR, lead_in=tone(np.full(SR // 2, 0.01))) is None  # a hum of partials, no hiss
    tail = hissing(let_go(1.0, 0.05), 30.0)
    assert noise_floor(tail, SR).size == tail.size - noise_tail(tail, SR)  # the tail first


def test_a_pluck_dying_into_hiss_dies_away_once_the_hiss_is_taken_out() -> None:
    take = hissing(shaped(0.005, 0.12, 0.0), 12.0)
    held = amp_envelope(take, SR)
    assert held is not None and not held.dies_away  # read as holding at the hiss's level
    floor = noise_floor(take, SR)
    assert floor is not None
    env = amp_envelope(take, SR, floor)
    assert env is not None and env.dies_away and env.decay == pytest.approx(0.12, rel=0.35)
