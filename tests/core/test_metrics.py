"""Audio distances and parameter errors: definition, identity, symmetry, ordering, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from deepdiva.core import metrics as M
from deepdiva.core.errors import AudioError, ConfigError, ParameterValueError

SR = 44100
N = 2 * SR
T = np.arange(N) / SR
CENTS = (0, 5, 20, 100, 700)
DISTANCES = [M.multires_stft_distance, M.log_mel_l1, M.mfcc_distance]


def _saw(f0: float, amp: float = 0.5) -> np.ndarray:
    x = sum(np.sin(2 * np.pi * f0 * k * T) / k for k in range(1, 30) if f0 * k < 20000)
    return (amp * np.exp(-1.5 * T) * x / 2).astype(np.float32)


def _sine(f0: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * f0 * T)).astype(np.float32)


def _reference_mrstft(a: np.ndarray, b: np.ndarray, fft_sizes=M.DEFAULT_FFT_SIZES) -> float:
    """Straightforward float64 ParallelWaveGAN multi-resolution STFT loss for one pair."""
    def mag(x: np.ndarray, n_fft: int) -> np.ndarray:
        hop = n_fft // 4
        x = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
        window = np.hanning(n_fft + 1)[:-1]
        frames = np.stack([x[i:i + n_fft] * window for i in range(0, len(x) - n_fft + 1, hop)])
        return np.sqrt(np.maximum(np.abs(np.fft.rfft(frames)) ** 2, 1e-7))

    total = 0.0
    for n_fft in fft_sizes:
        ma, mb = mag(a, n_fft), mag(b, n_fft)
        total += np.linalg.norm(ma - mb) / np.linalg.norm(mb) + np.mean(np.abs(np.log(ma) - np.log(mb)))
    return total / len(fft_sizes)


def test_mrstft_matches_the_reference_definition() -> None:
    target = _saw(220.0)
    cands = np.stack([_saw(233.0), _sine(440.0), 0.3 * target])
    ours = M.multires_stft_distance(cands, target)
    ref = [_reference_mrstft(c, target) for c in cands]
    np.testing.assert_allclose(ours, ref, rtol=1e-4)


@pytest.mark.parametrize("dist", DISTANCES)
def test_identity_is_zero_and_shape_dtype(dist) -> None:
    x = np.stack([_saw(110.0), _sine(1000.0), np.zeros(N, np.float32)])
    d = dist(x, x)
    assert d.shape == (3,) and d.dtype == np.float64
    np.testing.assert_array_equal(d, 0.0)


@pytest.mark.parametrize("dist", [M.log_mel_l1, M.mfcc_distance])
def test_symmetric_distances(dist) -> None:
    a = np.stack([_saw(110.0), _sine(1000.0)])
    b = np.stack([_saw(116.0, 0.2), _sine(700.0, 0.9)])
    np.testing.assert_allclose(dist(a, b), dist(b, a), rtol=1e-6)
    assert (dist(a, b) > 0).all()


@pytest.mark.parametrize("dist", DISTANCES)
@pytest.mark.parametrize("make", [_sine, _saw])
def test_more_detuned_is_further(dist, make) -> None:
    f0 = 440.0 if make is _sine else 220.0
    target = make(f0)
    cands = np.stack([make(f0 * 2 ** (c / 1200)) for c in CENTS])
    d = dist(cands, target)
    assert d[0] == 0.0
    assert np.all(np.diff(d) > 0), d


@pytest.mark.parametrize("dist", DISTANCES)
def test_more_level_difference_is_further(dist) -> None:
    target = _saw(220.0, 0.5)
    d = dist(np.stack([_saw(220.0, a) for a in (0.5, 0.4, 0.25, 0.1)]), target)
    assert np.all(np.diff(d) > 0), d


def test_spectral_target_caches_and_matches_the_function() -> None:
    target = _saw(220.0)
    cands = np.stack([_saw(220.0 * 2 ** (c / 1200)) for c in CENTS])
    st = M.SpectralTarget(target)
    assert st.n_samples == N
    # cached spectra and the streaming function agree up to float summation order
    np.testing.assert_allclose(st.distance(cands), M.multires_stft_distance(cands, target), rtol=1e-6)
    np.testing.assert_array_equal(st.distance(cands[2]), st.distance(cands)[2:3])
    # row-by-row targets, both ways
    targets = cands[::-1].copy()
    np.testing.assert_allclose(M.SpectralTarget(targets).distance(cands),
                               M.multires_stft_distance(cands, targets), rtol=1e-6)


def test_a_target_at_fewer_resolutions_reuses_its_spectra_and_scores_as_a_new_one() -> None:
    target = _saw(220.0)
    cands = np.stack([_saw(220.0 * 2 ** (c / 1200)) for c in CENTS])
    full = M.SpectralTarget(target)
    for sizes in ((1024,), (256, 2048), (1024, 128)):  # 128: not analysed yet, analysed now
        subset = full.at_sizes(sizes)
        assert subset.fft_sizes == sizes and full.fft_sizes == M.DEFAULT_FFT_SIZES
        np.testing.assert_array_equal(subset.distance(cands), M.SpectralTarget(target, fft_sizes=sizes).distance(cands))
    np.testing.assert_array_equal(full.distance(cands), M.SpectralTarget(target).distance(cands))  # left as it was
    sparse = full.at_sizes((1024,), hop_ratio=0.5)  # frames further apart: analysed again at that hop
    assert sparse.hop_ratio == 0.5 and full.hop_ratio == 0.25
    np.testing.assert_array_equal(sparse.distance(cands),
                                  M.SpectralTarget(target, fft_sizes=(1024,), hop_ratio=0.5).distance(cands))
    assert full.at_sizes((1024,), hop_ratio=0.5) is sparse  # analysed once, however often asked for


def test_row_by_row_targets_match_single_targets() -> None:
    a = np.stack([_saw(110.0), _sine(1000.0), _saw(300.0, 0.1)])
    b = np.stack([_saw(112.0), _sine(900.0), np.zeros(N, np.float32)])
    for dist in DISTANCES:
        batch = dist(a, b)
        single = np.concatenate([dist(a[i], b[i]) for i in range(3)])
        np.testing.assert_allclose(batch, single, rtol=1e-6)
        assert np.isfinite(batch).all()


def test_silent_target_is_finite() -> None:
    silence = np.zeros(N, np.float32)
    for dist in DISTANCES:
        d = dist(np.stack([silence, _sine(440.0)]), silence)
        assert d[0] == 0.0 and np.isfinite(d[1]) and d[1] > 0


def test_custom_resolutions() -> None:
    target, cand = _saw(220.0), _saw(230.0)
    d = M.multires_stft_distance(cand, target, fft_sizes=(512, 128))
    assert d[0] == pytest.approx(_reference_mrstft(cand, target, (512, 128)), rel=1e-4)
    with pytest.raises(ConfigError):
        M.SpectralTarget(target, fft_sizes=())


def test_mismatched_audio_raises() -> None:
    with pytest.raises(AudioError, match="samples"):
        M.multires_stft_distance(np.zeros((2, N)), np.zeros(N - 1))
    with pytest.raises(AudioError, match="expected 1 or 2"):
        M.log_mel_l1(np.zeros((2, N)), np.zeros((3, N)))
    with pytest.raises(AudioError, match="NaN"):
        M.mfcc_distance(np.full(N, np.nan), np.zeros(N))


def test_parameter_mae() -> None:
    pred = np.array([[0.0, 0.5, 1.0], [0.2, 0.5, 0.0]])
    true = np.array([[0.1, 0.5, 0.0], [0.0, 0.5, 0.0]])
    mae = M.parameter_mae(pred, true)
    assert mae.shape == (3,) and mae.dtype == np.float64
    np.testing.assert_allclose(mae, [0.15, 0.0, 0.5])
    with pytest.raises(ParameterValueError):
        M.parameter_mae(pred, true[:1])
    with pytest.raises(ParameterValueError):
        M.parameter_mae(pred[0], true[0])
    with pytest.raises(ParameterValueError):
        M.parameter_mae(np.full((1, 3), np.nan), np.zeros((1, 3)))


def test_distance_at_gains_equals_the_distance_of_the_scaled_clip() -> None:
    rng = np.random.default_rng(3)
    target = (0.1 * rng.standard_normal(22050)).astype(np.float32)
    clip = (0.3 * np.sin(np.arange(22050) * 0.05) + 0.01 * rng.standard_normal(22050)).astype(np.float32)
    gains = np.array([1.0, 0.5, 0.05, 3.0, 1e-6])  # the last pushes most bins onto the magnitude floor
    scaled = clip[None, :] * gains[:, None].astype(np.float32)
    st = M.SpectralTarget(target)
    np.testing.assert_allclose(st.distance_at_gains(clip, gains), st.distance(scaled), rtol=1e-5)


def test_a_noise_floor_hides_what_lies_under_it_in_target_and_candidates() -> None:
    """A note that ends in 0.8 s of steady hiss: with the floor, the clean note is as close as the
    hissing one itself nearly, and a long quiet tail under the hiss no longer buys closeness."""
    rng = np.random.default_rng(0)
    clean = np.where(T < 1.2, _saw(220.0), 0.0).astype(np.float32)
    hiss = (0.002 * rng.standard_normal(N)).astype(np.float32)
    target = clean + hiss
    tail = np.where(T < 1.2, _saw(220.0), 0.3 * _saw(220.0)).astype(np.float32)  # a tone ringing on after 1.2 s
    plain, floored = M.SpectralTarget(target), M.SpectralTarget(target, noise=target[int(1.3 * SR):])
    d_plain, d_floored = plain.distance(np.stack([clean, tail])), floored.distance(np.stack([clean, tail]))
    assert d_floored[0] < 0.5 * d_plain[0]  # the clean note is no longer punished for lacking the hiss
    assert d_floored[0] < d_floored[1]  # a tone ringing on above the floor still counts against a candidate
    np.testing.assert_allclose(floored.distance_at_gains(clean, [1.0, 0.5]),
                               floored.distance(np.stack([clean, 0.5 * clean])), rtol=1e-4)
    assert floored.at_sizes((1024,)).distance(clean[None])[0] < plain.at_sizes((1024,)).distance(clean[None])[0]
    with pytest.raises(AudioError, match="noise floor"):
        M.SpectralTarget(np.stack([target, target]), noise=hiss)


def test_spectral_convergence_from_a_lowest_frequency_leaves_out_what_lies_below() -> None:
    """A tone over a strong 5 Hz offset: counted whole, the tone alone is nearly as far as silence;
    from 30 Hz up it is the target, and the offset alone no closer than silence."""
    t = np.arange(44100) / 44100.0
    tone = (0.05 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    thump = (0.5 * np.sin(2 * np.pi * 5.0 * t)).astype(np.float32)
    target = tone + thump
    whole = M.spectral_convergence(np.stack([tone, thump]), target)
    heard = M.spectral_convergence(np.stack([tone, thump]), target, lowest_hz=30.0, sample_rate=44100)
    assert whole[0] > 0.9 and whole[1] < 0.1
    assert heard[0] < 0.05 and heard[1] > 0.9
