"""Features (mel, mel_db, MFCC) and the min/max scaler: shapes, ranges, librosa parity, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepdiva.core import features as F
from deepdiva.core.errors import AudioError, ConfigError, DatasetError, ModelError
from deepdiva.core.scaler import MinMaxScaler

SR = 44100
N_SAMPLES = 2 * SR


def _saw(f0: float, amp: float = 0.5, decay: float = 1.5, n: int = N_SAMPLES) -> np.ndarray:
    """Band-limited decaying saw with a short attack, like a rendered note."""
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 40) if f0 * k < 20000)
    env = np.exp(-decay * t) * np.minimum(1.0, t / 0.01)
    return (amp * env * x / 2).astype(np.float32)


@pytest.fixture(scope="module")
def clips() -> np.ndarray:
    rng = np.random.default_rng(5)
    noise = 0.05 * rng.standard_normal(N_SAMPLES) * np.exp(-4 * np.arange(N_SAMPLES) / SR)
    return np.stack([_saw(65.4), _saw(220.0, 0.2), _saw(1318.5, 0.9, 6.0), noise]).astype(np.float32)


@pytest.fixture(scope="module")
def librosa():
    return pytest.importorskip("librosa")


# ---------------------------------------------------------------- shapes and ranges

def test_shapes_for_two_seconds(clips: np.ndarray) -> None:
    mel = F.mel_features(clips)
    assert mel.shape == (4, 128, 173, 1) and mel.dtype == np.float32
    assert F.mel_db_features(clips).shape == (4, 128, 173, 1)
    mfcc = F.mfcc_features(clips)
    assert mfcc.shape == (4, 87, 13) and mfcc.dtype == np.float32
    assert F.feature_shape("mel", N_SAMPLES) == (128, 173, 1)
    assert F.feature_shape("mel_db", N_SAMPLES) == (128, 173, 1)
    assert F.feature_shape("mfcc", N_SAMPLES) == (87, 13)


@pytest.mark.parametrize("name", F.FEATURE_NAMES)
def test_extract_dispatches_and_matches_feature_shape(name: str, clips: np.ndarray) -> None:
    out = F.extract(name, clips[:2])
    assert out.shape == (2, *F.feature_shape(name, N_SAMPLES))
    assert np.isfinite(out).all()


def test_mel_features_span_unit_interval(clips: np.ndarray) -> None:
    mel = F.mel_features(clips)
    assert np.allclose(mel.min(axis=(1, 2, 3)), 0.0)
    assert np.allclose(mel.max(axis=(1, 2, 3)), 1.0)


def test_mel_db_in_unit_interval_and_keeps_loudness(clips: np.ndarray) -> None:
    x = clips[0]
    loud, quiet = F.mel_db_features(np.stack([x, 0.1 * x]))
    assert loud.min() >= 0.0 and loud.max() <= 1.0
    # 20 dB quieter = 20/80 lower wherever neither is clipped; per-clip scaling would hide it
    both = (loud > 0.3) & (loud < 0.95)
    assert both.sum() > 1000
    assert np.allclose(loud[both] - quiet[both], 0.25, atol=1e-4)
    a, b = F.mel_features(np.stack([x, 0.1 * x]))
    assert np.abs(a - b).max() < 1e-3


def test_mel_db_zero_db_is_the_loudest_full_scale_sine() -> None:
    t = np.arange(N_SAMPLES) / SR
    on_bin = np.arange(3, 60)[:, None] * SR / 2048  # sines on FFT bins below 1.3 kHz
    db = F.mel_db(0.01 * np.sin(2 * np.pi * on_bin * t))  # -40 dB: not clipped
    assert db.max() == pytest.approx(-40.0, abs=0.01)
    assert F.mel_db(np.sin(2 * np.pi * 1000 * t)).max() == pytest.approx(-0.67, abs=0.05)
    assert F.mel_db(np.sin(2 * np.pi * 5000 * t)).max() == pytest.approx(-8.2, abs=0.1)


def test_frequency_axis_is_flipped() -> None:
    t = np.arange(N_SAMPLES) / SR
    low = F.mel_features(np.sin(2 * np.pi * 100 * t))[0, :, :, 0]
    high = F.mel_features(np.sin(2 * np.pi * 8000 * t))[0, :, :, 0]
    assert np.argmax(low.mean(axis=1)) > 110  # near the last row
    assert np.argmax(high.mean(axis=1)) < 40


@pytest.mark.parametrize("name", F.FEATURE_NAMES)
def test_silence_gives_finite_features(name: str) -> None:
    out = F.extract(name, np.zeros((2, N_SAMPLES), dtype=np.float32))
    assert np.isfinite(out).all()
    if name != "mfcc":
        assert (out == 0).all()


# ---------------------------------------------------------------- train/run-time parity

@pytest.mark.parametrize("name", F.FEATURE_NAMES)
def test_batch_equals_single_clip(name: str, clips: np.ndarray) -> None:
    batch = F.extract(name, clips)
    for i, clip in enumerate(clips):
        single = F.extract(name, clip)  # 1-D: a batch of one
        assert single.shape == batch[i:i + 1].shape
        np.testing.assert_array_equal(single[0], batch[i])


def test_float64_input_is_cast_to_float32_and_ints_are_refused(clips: np.ndarray) -> None:
    np.testing.assert_array_equal(F.mel_features(clips[:1].astype(np.float64)), F.mel_features(clips[:1]))
    with pytest.raises(AudioError, match="32768"):
        F.mfcc_features((clips[:1] * 32767).astype(np.int16))


# ---------------------------------------------------------------- librosa parity

def test_filterbank_matches_librosa(librosa) -> None:
    for sr, n_fft, n_mels, fmin, fmax in [(44100, 2048, 128, 50.0, 15000.0), (22050, 1024, 40, 0.0, 11025.0),
                                          (48000, 1024, 64, 100.0, 8000.0)]:
        ours = F.mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)


def test_power_to_db_matches_librosa(librosa, clips: np.ndarray) -> None:
    power = F.mel_power(clips[:1], F.FeatureConfig())[0]
    np.testing.assert_allclose(F.power_to_db(power[None])[0], librosa.power_to_db(power), atol=1e-4)
    np.testing.assert_allclose(F.power_to_db(power[None], ref=power.max())[0],
                               librosa.power_to_db(power, ref=np.max), atol=1e-4)


def _seed_mel(librosa, x: np.ndarray, pad_mode: str) -> np.ndarray:
    """The original project's FeatureExtractor.melspectrogram, with librosa."""
    s = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=2048, hop_length=512, n_mels=128, fmin=50,
                                       fmax=15000, center=True, power=2.0, pad_mode=pad_mode)
    s = librosa.power_to_db(s, ref=np.max)
    s = (s - s.min()) / (s.max() - s.min())
    return s[::-1, :, None]


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_mel_matches_librosa(librosa, clips: np.ndarray, pad_mode: str) -> None:
    ours = F.mel_features(clips, F.FeatureConfig(pad_mode=pad_mode))
    for i, x in enumerate(clips):
        ref = _seed_mel(librosa, x, pad_mode)
        assert np.abs(ours[i] - ref).max() < 1e-4


def test_mel_db_matches_librosa(librosa, clips: np.ndarray) -> None:
    cfg = F.FeatureConfig()
    ours = F.mel_db(clips, cfg)
    for i, x in enumerate(clips):
        s = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=2048, hop_length=512, n_mels=128, fmin=50,
                                           fmax=15000, pad_mode="reflect")
        ref = np.clip(librosa.power_to_db(s, ref=F.full_scale_reference(cfg), top_db=None), -80, 0)
        assert np.abs(ours[i] - ref).max() < 1e-3  # dB


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_mfcc_matches_librosa(librosa, clips: np.ndarray, pad_mode: str) -> None:
    ours = F.mfcc_features(clips, F.FeatureConfig(pad_mode=pad_mode))
    refs = np.stack([librosa.feature.mfcc(y=x, sr=SR, n_mfcc=13, n_fft=2048, hop_length=1024, fmin=50,
                                          fmax=15000, pad_mode=pad_mode).T for x in clips])
    assert np.abs(ours - refs).max() < 1e-3 * np.abs(refs).max()
    scaler = MinMaxScaler().fit(refs)
    assert np.abs(scaler.transform(ours) - scaler.transform(refs)).max() < 1e-3


# ---------------------------------------------------------------- config and errors

def test_config_round_trips_through_json() -> None:
    cfg = F.FeatureConfig(pad_mode="constant", n_mels=64, db_floor=-60.0)
    again = F.FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert F.FeatureConfig.from_dict({}) == F.FeatureConfig()


@pytest.mark.parametrize("bad", [{"n_mels": 0}, {"fmax": 30000.0}, {"fmin": 500.0, "fmax": 400.0},
                                 {"pad_mode": "wrap"}, {"n_mfcc": 200}, {"db_floor": 10.0},
                                 {"mel_hop_length": 1.5}, {"bogus": 1}, {"fmin": "50"}])
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ConfigError):
        F.FeatureConfig.from_dict(bad)


def test_bad_audio_raises_audio_error() -> None:
    with pytest.raises(AudioError, match="NaN"):
        F.mel_features(np.full(N_SAMPLES, np.nan, dtype=np.float32))
    with pytest.raises(AudioError, match="shape"):
        F.mel_features(np.zeros((1, 2, N_SAMPLES)))
    with pytest.raises(AudioError, match="samples"):
        F.mfcc_features(np.zeros(100))
    with pytest.raises(AudioError, match="empty"):
        F.mel_features(np.zeros((0, N_SAMPLES)))


def test_unknown_feature_name() -> None:
    with pytest.raises(ConfigError, match="mel_db"):
        F.extract("spectrogram", np.zeros(N_SAMPLES))


# ---------------------------------------------------------------- scaler

def test_scaler_matches_the_original_formula(clips: np.ndarray) -> None:
    x = F.mfcc_features(clips)
    scaler = MinMaxScaler()
    y = scaler.fit_transform(x)
    lo, hi = x.min(axis=0), x.max(axis=0)
    np.testing.assert_allclose(y, (x - lo) / (hi - lo), atol=1e-5)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.allclose(y.min(axis=0), 0) and np.allclose(y.max(axis=0), 1)
    np.testing.assert_allclose(scaler.inverse_transform(y), x, rtol=1e-5, atol=1e-3)


def test_scaler_json_round_trip_is_exact(tmp_path, clips: np.ndarray) -> None:
    x = F.mfcc_features(clips)
    scaler = MinMaxScaler(clip=True).fit(x[:3])
    again = MinMaxScaler.from_json(scaler.to_json())
    np.testing.assert_array_equal(again.min_, scaler.min_)
    np.testing.assert_array_equal(again.range_, scaler.range_)
    assert again.clip and again.axis == 0
    np.testing.assert_array_equal(again.transform(x), scaler.transform(x))
    path = tmp_path / "scaler.json"
    scaler.save(path)
    loaded = MinMaxScaler.load(path)
    np.testing.assert_array_equal(loaded.transform(x), scaler.transform(x))
    assert json.loads(path.read_text())["shape"] == [1, 87, 13]
    assert list(tmp_path.iterdir()) == [path]  # no temp files left


def test_scaler_constant_columns_do_not_make_nan() -> None:
    x = np.ones((5, 3, 2), dtype=np.float32)
    x[:, 0, 0] = np.arange(5)
    y = MinMaxScaler().fit_transform(x)
    assert np.isfinite(y).all()
    assert (y[:, 1:, :] == 0).all() and np.allclose(y[:, 0, 0], np.arange(5) / 4)


def test_scaler_clip_and_unclipped() -> None:
    train = np.array([[0.0, 10.0], [2.0, 20.0]])
    new = np.array([[4.0, 0.0]])
    np.testing.assert_allclose(MinMaxScaler().fit(train).transform(new), [[2.0, -1.0]])
    np.testing.assert_allclose(MinMaxScaler(clip=True).fit(train).transform(new), [[1.0, 0.0]])
    glob = MinMaxScaler(axis=None).fit(train)
    np.testing.assert_allclose(glob.transform(train), train / 20.0)
    assert MinMaxScaler.from_json(glob.to_json()).axis is None
    per_clip_time = MinMaxScaler(axis=(0, 1)).fit(np.zeros((4, 5, 3)))
    assert MinMaxScaler.from_json(per_clip_time.to_json()).axis == (0, 1)


def test_scaler_errors(tmp_path) -> None:
    with pytest.raises(ModelError, match="not fitted"):
        MinMaxScaler().transform(np.zeros((2, 3)))
    scaler = MinMaxScaler().fit(np.zeros((4, 87, 13)))
    with pytest.raises(ModelError, match="shape"):
        scaler.transform(np.zeros((4, 173, 13)))
    with pytest.raises(DatasetError):
        MinMaxScaler().fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(DatasetError):
        MinMaxScaler(axis=3).fit(np.zeros((2, 2)))
    with pytest.raises(ModelError):
        MinMaxScaler.from_json("{not json")
    with pytest.raises(ModelError):
        MinMaxScaler.from_json(json.dumps({"format": "something else"}))
    bad = json.loads(scaler.to_json())
    bad["range"][0] = 0.0
    with pytest.raises(ModelError):
        MinMaxScaler.from_json(json.dumps(bad))
    with pytest.raises(ModelError, match="cannot read"):
        MinMaxScaler.load(tmp_path / "missing.json")
