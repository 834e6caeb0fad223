"""deepdiva match end to end with the shipped model: good inputs give presets, bad ones exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from deepdiva.cli import cli
from deepdiva.core.profile import load_profile
from deepdiva.core.renderers import make_renderer
from deepdiva.presets.h2p import read_h2p

SR = 44100


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def patch_audio() -> np.ndarray:
    """A real builtin render of a fixed, audible medium33 patch."""
    pset = load_profile("diva").parameter_set("medium33")
    params = pset.defaults_normalised()[None, :].copy()
    params[0, pset.ids.index(148)] = 0.7  # VCF1 cutoff open enough to hear
    return make_renderer("builtin", pset).render(params)[0]


def written(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", ["stereo", "48k", "short", "long"])
def test_inputs_of_any_shape_give_a_preset(tmp_path: Path, patch_audio: np.ndarray, kind: str) -> None:
    audio, sr = patch_audio, SR
    if kind == "stereo":
        audio = np.stack([audio, 0.5 * audio], axis=1)
    elif kind == "48k":
        import soxr

        audio, sr = soxr.resample(audio, SR, 48000), 48000
    elif kind == "short":
        audio = audio[: SR // 2]
    else:
        audio = np.concatenate([audio, audio, audio])
    src = tmp_path / f"{kind}.wav"
    sf.write(src, audio, sr, subtype="FLOAT")
    out = tmp_path / "out"
    result = run("match", str(src), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    preset = Path(report["preset"])
    assert preset.exists() and preset.suffix == ".h2p" and preset.parent == out
    assert Path(report["preview"]).exists()
    assert np.isfinite(report["distance"]) and report["distance"] >= 0
    assert len(report["params"]) == 33
    shown = run("preset", "show", str(preset), "--set", "medium33", "--json")
    assert shown.exit_code == 0, shown.output
    wav = tmp_path / "render.wav"
    rendered = run("render", str(preset), "-o", str(wav))
    assert rendered.exit_code == 0, rendered.output
    assert sf.info(wav).frames == 2 * SR


def test_no_score_writes_the_networks_preset_without_measuring_it(tmp_path: Path, patch_audio: np.ndarray) -> None:
    src = tmp_path / "pluck.wav"
    sf.write(src, patch_audio, SR, subtype="FLOAT")
    scored = json.loads(run("match", str(src), "--out", str(tmp_path / "a"), "--json").stdout)
    result = run("match", str(src), "--out", str(tmp_path / "b"), "--json", "--no-score", "--no-preview")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["distance"] is None and report["network_distance"] is None and report["preview"] is None
    # unmeasured, the network's most confident answer (with the target's envelope if it dies away or is let go);
    # measured, the one of its answers (each also with that envelope), bank patches or plain patches
    # that sounds closest; either in tune (its level then set: the oscillator volumes)
    from deepdiva.core.audio import prepare_note, read_audio
    from deepdiva.core.matcher import Matcher
    from deepdiva.core.metrics import SpectralTarget

    matcher = Matcher.load()
    note = prepare_note(read_audio(src))
    pitch = matcher.detect(note[None, :])[0]
    key = matcher.played_at(pitch).midi_float
    answers = matcher.candidates(note, pitch)
    assert len(answers) == 24  # 8 answers, the 8 with its envelope, the shipped bank's 8 nearest patches
    columns = [j for j, p in enumerate(matcher.parameter_set.parameters) if p.location not in ("OSC:Vol1", "OSC:Vol2")]

    def normalised(params: dict) -> np.ndarray:
        return np.array([v["normalised"] for v in params.values()])[columns]

    def in_tune(guess: np.ndarray, target: SpectralTarget | None = None) -> np.ndarray:
        return matcher.in_tune(guess, matcher.renderer.render(guess[None, :], key)[0], note, key, pitch, target)[0]

    np.testing.assert_allclose(normalised(report["params"]), in_tune(matcher.unscored(note, pitch))[columns], atol=1e-6)
    closest, _ = matcher.closest(np.vstack([answers, matcher.plain_options(note, key)]), note, key)
    np.testing.assert_allclose(normalised(scored["params"]), in_tune(closest, SpectralTarget(note))[columns], atol=1e-6)
    assert written(tmp_path / "b") == [tmp_path / "b" / "pluck.h2p"]
    description = read_h2p(tmp_path / "b" / "pluck.h2p").meta["Description"]
    assert "from pluck.wav" in description and "distance" not in description
    text = run("match", str(src), "--out", str(tmp_path / "c"), "--no-score")  # the preview is still rendered
    assert text.exit_code == 0 and "distance" not in text.stdout and "preview pluck.wav" in text.stdout
    assert (tmp_path / "c" / "pluck.wav").exists()
    refined = json.loads(run("match", str(src), "--out", str(tmp_path / "d"), "--json", "--no-score",
                             "--refine", "0.3").stdout)
    assert refined["distance"] <= refined["network_distance"]  # a search measures every answer anyway


def test_candidates_write_distinct_runners_up(tmp_path: Path, patch_audio: np.ndarray) -> None:
    src = tmp_path / "lead.wav"
    sf.write(src, patch_audio, SR, subtype="FLOAT")
    out = tmp_path / "out"
    result = run("match", str(src), "--out", str(out), "--refine", "1", "--candidates", "3", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    alternatives = report["alternatives"]
    assert 1 <= len(alternatives) <= 2  # runners-up only when the search found distinct ones
    distances = [report["distance"]] + [a["distance"] for a in alternatives]
    assert distances == sorted(distances)
    pset = load_profile("diva").parameter_set("medium33")

    def normalised(path: str) -> np.ndarray:
        native = read_h2p(path, pset.profile).native_by_id(pset.profile)
        return pset.to_normalised(np.array([[native[i] for i in pset.ids]]))[0]

    vectors = [normalised(report["preset"])]
    for rank, alt in enumerate(alternatives, start=2):
        assert Path(alt["preset"]) == out / f"lead alt {rank}.h2p" and Path(alt["preview"]).exists()
        vectors.append(normalised(alt["preset"]))
    for i in range(len(vectors)):  # each differs from every better one by >= 5 % on average
        for j in range(i):
            assert np.mean(np.abs(vectors[i] - vectors[j])) >= 0.05 - 0.01  # two-decimal presets
    refused = run("match", str(src), "--out", str(tmp_path / "none"), "--candidates", "3")
    assert refused.exit_code == 2 and "--candidates needs --refine" in refused.output
    assert not (tmp_path / "none").exists()


def test_never_overwrites(tmp_path: Path, patch_audio: np.ndarray) -> None:
    src = tmp_path / "a.wav"
    sf.write(src, patch_audio, SR)
    for _ in range(2):
        assert run("match", str(src), "--out", str(tmp_path / "out"), "--no-preview").exit_code == 0
    assert [p.name for p in written(tmp_path / "out")] == ["a (2).h2p", "a.h2p"]


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str, list[str]]]:
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    cases = {}
    p = tmp_path / "text.wav"
    p.write_text("not audio at all")
    cases["not audio"] = (p, "not a readable audio file", [])
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0, np.float32), SR)
    cases["empty"] = (p, "empty", [])
    p = tmp_path / "silent.wav"
    sf.write(p, tone * 1e-5, SR, subtype="FLOAT")
    cases["silent"] = (p, "silent", [])
    p = tmp_path / "nan.wav"
    bad = tone.copy()
    bad[5] = np.nan
    sf.write(p, bad, SR, subtype="FLOAT")
    cases["nan"] = (p, "NaN or infinite", [])
    p = tmp_path / "long.wav"
    sf.write(p, np.tile(tone, 4), SR)
    cases["too long"] = (p, "longer than the limit", ["--max-seconds", "2"])
    cases["missing"] = (tmp_path / "nope.wav", "no such audio file", [])
    return cases


def test_each_bad_input_has_its_own_error_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for case, (path, message, extra) in _bad_inputs(tmp_path).items():
        result = run("match", str(path), "--out", str(out), *extra)
        assert result.exit_code == 2, (case, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (case, lines)
        assert "Traceback" not in result.output
    assert not out.exists() or written(out) == []


def test_batch_of_files_and_folders(tmp_path: Path, patch_audio: np.ndarray) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        sf.write(folder / f"n{i}.wav", patch_audio * (0.5 + 0.2 * i), SR)
    (folder / "junk.wav").write_text("no")
    result = run("match", str(folder), "--out", str(tmp_path / "out"), "--json", "--no-preview")
    assert result.exit_code == 2  # one bad file: reported, the others still matched
    report = json.loads(result.stdout)
    assert len(report["results"]) == 3 and len(report["failures"]) == 1
    assert len(list((tmp_path / "out").glob("*.h2p"))) == 3


def band_limited_saw(midi: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    k = np.arange(1, int(15000 // f0) + 1)
    wave = (np.sin(2 * np.pi * f0 * np.outer(t, k)) / k).sum(axis=1)
    return (0.4 * wave / np.abs(wave).max()).astype(np.float32)


def test_a_c4_saw_round_trips_to_a_preset_played_at_c4_with_tune_0(tmp_path: Path) -> None:
    src = tmp_path / "saw.wav"
    sf.write(src, band_limited_saw(60 + 0.12), SR, subtype="FLOAT")  # 12 cents sharp
    result = run("match", str(src), "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["note"], report["midi_pitch"]) == ("C4", 60) and report["cents"] == pytest.approx(12, abs=3)
    assert report["played_at"]["midi_pitch"] == 60 and report["played_at"]["held_for"] is None  # held to the end
    profile = load_profile("diva")
    preset = read_h2p(report["preset"], profile)
    values = preset.native_by_id(profile)
    assert values[86] == 0.0  # OSC:Tune1: the octave of the recording is in the key, not the preset
    assert values[15] == pytest.approx(report["cents"], abs=0.06)  # VCC:FTun carries the cents
    assert "played at C4" in preset.meta["Description"]
    # rendered at its key, the written preset plays exactly its preview (the fine tune included)
    played = run("render", report["preset"], "-o", str(tmp_path / "played.wav"), "--midi-pitch", "60")
    assert played.exit_code == 0, played.output
    np.testing.assert_allclose(sf.read(tmp_path / "played.wav", dtype="float32")[0],
                               sf.read(report["preview"], dtype="float32")[0], atol=1e-3)
    text = run("match", str(src), "--out", str(tmp_path / "text"))
    assert f"saw.wav: C4 ({report['cents']:+.0f} cents" in text.output and "play the preset at C4" in text.output


def test_a_quiet_take_gives_the_preset_of_the_same_take_at_the_nominal_level(tmp_path: Path) -> None:
    """A take recorded 40 dB down (peak -48 dBFS) is raised to -18 dBFS before matching: the preset is
    the one the same take gives at that level, its preview as loud, not a preset no one can hear."""
    saw = band_limited_saw(57.0)  # peaks at 0.4, -8 dBFS: left as recorded
    quiet, nominal = tmp_path / "quiet.wav", tmp_path / "nominal.wav"
    sf.write(quiet, saw * np.float32(0.01), SR, subtype="FLOAT")
    sf.write(nominal, saw * np.float32(10 ** (-18 / 20) / 0.4), SR, subtype="FLOAT")
    reports = [json.loads(run("match", str(src), "--out", str(tmp_path / src.stem), "--json").stdout)
               for src in (quiet, nominal)]
    assert reports[0]["raised_db"] == pytest.approx(30.0, abs=0.1) and reports[1]["raised_db"] == 0.0
    assert reports[0]["params"] == reports[1]["params"]
    preview = sf.read(reports[0]["preview"], dtype="float32")[0]
    assert 20 * np.log10(np.abs(preview).max()) > -24.0  # as loud as the level step leaves the nominal take
    text = run("match", str(quiet), "--out", str(tmp_path / "text")).output
    assert "raised 30 dB, a quiet take" in text
    loud = tmp_path / "loud.wav"
    sf.write(loud, saw, SR, subtype="FLOAT")
    assert json.loads(run("match", str(loud), "--out", str(tmp_path / "loud"), "--json").stdout)["raised_db"] == 0.0


def test_a_clipped_take_is_restored_and_says_so(tmp_path: Path) -> None:
    """A saw recorded 3 dB too hot into a 16-bit file: its flat tops are filled in before matching,
    and the text and JSON say how many samples were."""
    src = tmp_path / "hot.wav"
    sf.write(src, np.clip(band_limited_saw(50.0) * np.float32(10 ** (3 / 20) / 0.4), -1.0, 1.0), SR, subtype="PCM_16")
    report = json.loads(run("match", str(src), "--out", str(tmp_path / "out"), "--json", "--no-score").stdout)
    assert report["restored_samples"] > 100 and report["raised_db"] == 0.0
    text = run("match", str(src), "--out", str(tmp_path / "text"), "--no-score").output
    assert f"{report['restored_samples']} clipped samples restored" in text


def test_unpitched_noise_is_played_at_c3(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    src = tmp_path / "noise.wav"
    sf.write(src, (0.3 * rng.standard_normal(SR) * np.exp(-6 * t)).astype(np.float32), SR)
    report = json.loads(run("match", str(src), "--out", str(tmp_path / "out"), "--json").stdout)
    assert report["note"] == "unpitched" and report["played_at"] == {"note": "C3", "midi_pitch": 48, "cents": 0.0,
                                                                   "held_for": None, "let_go_at": None,
                                                                   "release": None, "keys": ["C3"]}
    assert report["chord"] is None and report["noise_floor_dbfs"] is None  # it dies away into digital silence
    assert "unpitched" in read_h2p(report["preset"], load_profile("diva")).meta["Description"]


def test_any_name_the_os_allows_in_a_folder_batch(tmp_path: Path, patch_audio: np.ndarray) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    latin1, broken, long_name = os.fsdecode(b"caf\xe9.wav"), os.fsdecode(b"bad\xff.wav"), "音" * 83 + ".wav"
    try:
        sf.write(os.fsencode(folder / latin1), patch_audio, SR)
    except (OSError, RuntimeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    (folder / broken).write_bytes(b"RIFF not audio")
    sf.write(os.fsencode(folder / long_name), patch_audio, SR)  # 253 bytes: legal, at the limit
    out = tmp_path / "out"
    text = run("match", str(folder), "--out", str(out), "--no-preview")
    assert text.exit_code == 2  # the bad file is reported; the others are matched
    assert "caf\\xe9.wav: " in text.stdout and f"{long_name}: " in text.stdout
    assert "error:" in text.stderr and "bad\\xff.wav" in text.stderr and "Traceback" not in text.output
    presets = sorted(p.name for p in out.iterdir())
    assert presets == sorted(["caf_xe9.h2p", "音" * 83 + ".h2p"])
    assert "from caf\\xe9.wav" in read_h2p(out / "caf_xe9.h2p").meta["Description"]
    again = run("match", str(folder), "--out", str(out), "--json")  # every name taken: numbered, cut to fit
    assert again.exit_code == 2
    report = json.loads(again.stdout)
    assert [r["source"] for r in report["results"]] == [str(folder / "caf\\xe9.wav"), str(folder / long_name)]
    assert [f["source"] for f in report["failures"]] == [str(folder / "bad\\xff.wav")]
    assert Path(report["results"][1]["preset"]).name == "音" * 82 + " (2).h2p"
    assert all(len(os.fsencode(p.name)) <= 255 for p in out.iterdir()) and len(list(out.iterdir())) == 6


def test_a_take_that_opens_on_hiss_is_matched_through_it(tmp_path: Path) -> None:
    """A recording as a musician makes it: half a second of hiss, then a saw held to the end, the
    hiss under it. The note is found where it starts, and the match, which reads the hiss from the
    lead-in, writes the same preset the matcher gives that note with that lead-in."""
    from deepdiva.core.audio import AudioClip, prepare_take
    from deepdiva.core.matcher import Matcher

    saw = band_limited_saw(45.0)
    hiss = 0.1 * np.sqrt(np.mean(saw ** 2)) * np.random.default_rng(3).standard_normal(SR // 2 + saw.size)
    take = (np.concatenate([np.zeros(SR // 2, np.float32), saw]) + hiss).astype(np.float32)
    src = tmp_path / "take.wav"
    sf.write(src, take, SR, subtype="FLOAT")
    result = run("match", str(src), "--out", str(tmp_path / "out"), "--json", "--no-preview")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["note"] == "A2" and report["noise_floor_dbfs"] == pytest.approx(
        20 * np.log10(np.sqrt(np.mean(hiss ** 2))), abs=1.0)
    prepared = prepare_take(AudioClip(take, SR, "take.wav"))
    assert SR // 2 - 0.01 * SR <= prepared.lead_in.size <= SR // 2  # the note starts after the hiss
    matcher = Matcher.load()
    through = matcher.match(prepared.note, lead_in=prepared.lead_in)
    assert report["distance"] == pytest.approx(through.distance, rel=1e-4)
    assert through.distance != pytest.approx(matcher.match(prepared.note).distance, rel=1e-3)  # the lead-in counted
    text = run("match", str(src), "--out", str(tmp_path / "text"), "--no-preview").output
    assert f"compared through the take's hiss at {report['noise_floor_dbfs']:.0f} dBFS" in text


def test_a_note_let_go_after_the_window_gets_its_release_in_the_preset(tmp_path: Path) -> None:
    """A 5 s take of a saw held to 2.5 s, then a 60 ms release: the match compares its first 2 s,
    reads the note-off in what follows and writes the release into the preset (ENV1:Dec)."""
    t = np.arange(5 * SR) / SR
    level = np.where(t < 2.5, np.clip(t / 0.01, 0, 1), np.exp(-(t - 2.5) / 0.06))
    src = tmp_path / "held.wav"
    sf.write(src, (band_limited_saw(57.0, seconds=5.0) * level).astype(np.float32), SR)
    report = json.loads(run("match", str(src), "--out", str(tmp_path / "out"), "--json").stdout)
    played = report["played_at"]
    assert played["held_for"] is None and played["let_go_at"] == pytest.approx(2.5, abs=0.03)
    assert played["release"] == pytest.approx(0.06, rel=0.25)
    assert float(report["params"]["ENV1:Dec"]["value"]) == pytest.approx(25 * np.log10(played["release"] / 0.001),
                                                                          abs=1.0)
    text = run("match", str(src), "--out", str(tmp_path / "text")).output
    assert "let go at 2.50 s, after the 2 s compared: the preset releases as the take did" in text
