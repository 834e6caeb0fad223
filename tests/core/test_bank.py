"""The patch bank: embeddings, nearest rows, pitch filter, file round trip, warm starts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from deepdiva.core.bank import (
    BANDS,
    COMPACT_DIMS,
    SEGMENTS,
    Bank,
    build_bank,
    cached_bank,
    embed,
    random_rows,
    shipped_bank,
    synth_probe,
)
from deepdiva.core.errors import ModelError
from deepdiva.core.metrics import SpectralTarget
from deepdiva.core.profile import load_profile
from deepdiva.core.refine import refine
from deepdiva.core.render import RenderSettings
from deepdiva.core.renderers import make_renderer


@pytest.fixture(scope="module")
def renderer():
    return make_renderer("builtin", load_profile("diva").parameter_set("medium33"), RenderSettings())


@pytest.fixture(scope="module")
def bank(renderer) -> Bank:
    params, notes = random_rows(renderer, 96, seed=1)
    return build_bank(renderer, params, notes)


def test_rows_find_themselves(renderer, bank: Bank) -> None:
    params, notes = random_rows(renderer, 96, seed=1)
    assert bank.embeddings.shape == (96, BANDS * SEGMENTS) and bank.embeddings.dtype == np.float16
    audio = renderer.render(params[:8], notes[:8])
    hits = [bank.nearest(q, 3)[0] for q in embed(audio)]
    assert sum(h == i for i, h in enumerate(hits)) >= 7  # float16 rounding may tie a near-silent pair


def test_nearest_ranks_as_the_plain_squared_distance(bank: Bank) -> None:
    rng = np.random.default_rng(3)
    for row in range(0, 96, 12):
        query = bank.embeddings[row].astype(np.float32) + 2 * rng.standard_normal(BANDS * SEGMENTS).astype(np.float32)
        plain = np.sum(np.square(bank.embeddings.astype(np.float32) - query), axis=1)
        np.testing.assert_array_equal(bank.nearest(query, 5), np.argsort(plain, kind="stable")[:5])


def test_near_keeps_rows_heard_close_to_the_key(bank: Bank) -> None:
    pitched = np.flatnonzero(np.isfinite(bank.heard))
    key = float(bank.heard[pitched[0]])
    rows = bank.nearest(np.zeros(BANDS * SEGMENTS, np.float32), 1, near=key, tolerance=0.5)
    assert abs(bank.heard[rows[0]] - key) <= 0.5
    rows = bank.nearest(np.zeros(BANDS * SEGMENTS, np.float32), 2, near=float("nan"))
    assert np.all(np.isnan(bank.heard[rows]))
    # too few rows near the key: any rows, or (strict) only those
    assert len(bank.nearest(np.zeros(BANDS * SEGMENTS, np.float32), 3, near=key, tolerance=0.001)) == 3
    strict = bank.nearest(np.zeros(BANDS * SEGMENTS, np.float32), 3, near=key, tolerance=0.001, strict=True)
    assert 1 <= len(strict) < 3 and np.all(np.abs(bank.heard[strict] - key) <= 0.001)
    assert not len(bank.nearest(np.zeros(BANDS * SEGMENTS, np.float32), 3, near=200.0, strict=True))


def test_save_load_and_cached_bank(tmp_path: Path, renderer, bank: Bank) -> None:
    loaded = Bank.load(bank.save(tmp_path / "b.npz"))
    np.testing.assert_array_equal(loaded.embeddings, bank.embeddings)
    assert loaded.parameter_ids == bank.parameter_ids
    cache = tmp_path / "cache" / "bank.npz"
    said: list[str] = []
    made = cached_bank(renderer, cache, size=16, say=said.append)
    assert len(made) == 16 and cache.exists() and len(said) == 1 and "(once)" in said[0]
    assert len(cached_bank(renderer, cache, size=16, say=said.append)) == 16 and len(said) == 1  # read, not rebuilt
    # built by a synth that sounds different now (or by a deepdiva that kept no probe): built again
    np.testing.assert_array_equal(Bank.load(cache).probe, synth_probe(renderer))
    replace(made, probe=made.probe + np.float16(3.0)).save(cache)
    assert len(cached_bank(renderer, cache, size=16, say=said.append)) == 16 and "sounds different" in said[-1]
    replace(made, probe=None).save(cache)
    cached_bank(renderer, cache, size=16, say=said.append)
    assert len(said) == 3 and "sounds different" in said[-1]
    np.testing.assert_array_equal(Bank.load(cache).probe, synth_probe(renderer))
    (tmp_path / "junk.npz").write_bytes(b"not a bank")
    with pytest.raises(ModelError, match="delete it"):
        Bank.load(tmp_path / "junk.npz")


def test_warm_starts_never_worse_than_the_start(renderer, bank: Bank) -> None:
    target = renderer.render(bank.params[5:6], 60.0)[0]
    start = renderer.parameter_set.defaults_normalised()
    result = refine(renderer, SpectralTarget(target).distance, start, 0.3, note=60.0, warm_starts=bank.params[:8])
    assert result.distance <= result.start_distance
    assert result.distance < 1e-6  # the target's own patch was among the warm starts


def test_threads_build_the_same_bank(renderer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    params, notes = random_rows(renderer, 600, seed=4)
    serial = build_bank(renderer, params, notes)
    with ThreadPoolExecutor(2) as pool:
        threaded = build_bank(renderer, params, notes, executor=pool)
    np.testing.assert_array_equal(serial.embeddings, threaded.embeddings)
    np.testing.assert_array_equal(serial.heard, threaded.heard)


def test_a_scored_match_with_a_bank_chooses_among_its_nearest_patches(renderer, bank: Bank) -> None:
    from deepdiva.core.matcher import WARM_STARTS, Matcher

    plain = Matcher.load(bank=False)
    banked = Matcher(plain.model, plain.renderer, plain.threads, use_bank=True)
    banked.bank = bank
    params, notes = random_rows(renderer, 96, seed=1)  # the bank's own patches, as first played
    for row in np.flatnonzero(np.isfinite(bank.heard) & (bank.heard >= 40) & (bank.heard <= 80)):
        note = renderer.render(params[row:row + 1], notes[row])[0]
        pitch = banked.detect(note[None, :])[0]
        own = renderer.render(bank.params[row:row + 1], banked.played_at(pitch).midi_float)
        if SpectralTarget(note).distance(own)[0] < 0.3:  # restated for the key it is heard at, it plays the same
            break  # (not every row: a restated tuning may fall outside its range)
    near = bank.nearest(embed(note[None, :])[0], WARM_STARTS, near=banked.played_at(pitch).midi_float, strict=True)
    assert 1 <= len(near) and len(banked.candidates(note, pitch)) == len(plain.candidates(note, pitch)) + len(near)
    with_bank, without = banked.match(note), plain.match(note)
    assert with_bank.distance < 0.3 < without.distance  # its own patch was among the choices
    assert banked.match(note, score=False).params.tolist() == plain.match(note, score=False).params.tolist()


def test_a_compact_bank_keeps_its_patches_and_its_neighbours(tmp_path: Path, renderer) -> None:
    params, notes = random_rows(renderer, 400, seed=5)
    full = build_bank(renderer, params, notes)
    small = Bank.load(full.save(tmp_path / "c.npz", dims=COMPACT_DIMS))
    assert (tmp_path / "c.npz").stat().st_size < 0.5 * full.save(tmp_path / "f.npz").stat().st_size
    np.testing.assert_allclose(small.params, full.params, atol=5e-4)  # float16
    np.testing.assert_array_equal(small.played, full.played)
    np.testing.assert_allclose(small.heard, full.heard, atol=0.05, equal_nan=True)
    error = np.abs(small.full_embeddings().astype(np.float32) - full.embeddings.astype(np.float32))
    assert np.median(error) < 1.0  # dB, of values spread over tens of dB
    queries = embed(renderer.render(params[:20], notes[:20]))
    same = [bank.nearest(q, 1)[0] for bank in (full, small) for q in queries]
    assert sum(a == b for a, b in zip(same[:20], same[20:], strict=True)) >= 18
    # queried in its components, it ranks as the plain distance to what they stand for
    stood_for = small.full_embeddings().astype(np.float32)
    for q in queries[:5]:
        plain = np.sum(np.square(stood_for - q), axis=1)
        assert np.sort(plain)[:3] == pytest.approx(plain[small.nearest(q, 3)], rel=1e-3)
    again = Bank.load(small.save(tmp_path / "again.npz"))  # saved as it is: the same codes
    np.testing.assert_array_equal(again.embeddings, small.embeddings)


def test_a_bank_that_does_not_add_up_is_refused(tmp_path: Path, bank: Bank) -> None:
    path = bank.save(tmp_path / "b.npz", dims=8)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["heard"] = arrays["heard"][:-1]
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(ModelError, match="inconsistent"):
        Bank.load(tmp_path / "cut.npz")
    arrays["format"] = np.array("something else")
    np.savez(tmp_path / "other.npz", **arrays)
    with pytest.raises(ModelError, match="not a deepdiva-bank"):
        Bank.load(tmp_path / "other.npz")


def test_the_shipped_bank_is_what_its_recipe_renders(renderer) -> None:
    """scripts/build_bank.py's rows, played by today's builtin synth, find themselves in the shipped
    bank: it fails when the synth changes and the bank was not rebuilt."""
    shipped = shipped_bank(renderer.parameter_set)
    assert shipped is not None and len(shipped) == 20_000
    params, notes = random_rows(renderer, 20_000)
    np.testing.assert_array_equal(shipped.played, notes)
    queries = embed(renderer.render(params[:24], notes[:24]))
    embeddings = shipped.full_embeddings().astype(np.float32)
    for i, q in enumerate(queries):  # its own row is the nearest, or as near as it (silent patches tie)
        distances = np.sum(np.square(embeddings - q), axis=1)
        assert distances[i] <= distances[shipped.nearest(q, 1)[0]] + 1.0


def test_the_shipped_model_matches_with_the_shipped_bank(renderer, tmp_path: Path, monkeypatch) -> None:
    from deepdiva.core.matcher import Matcher

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing is built into a user cache
    assert len(cached_bank(renderer)) == 20_000 and not any(tmp_path.iterdir())
    auto, off = Matcher.load(), Matcher.load(bank=False)
    assert auto.bank is not None and len(auto.bank) == 20_000 and auto.bank.full_embeddings().shape[1] == BANDS * SEGMENTS
    assert off.bank is None and not off.use_bank
    note = renderer.render(renderer.parameter_set.defaults_normalised()[None, :], 57.0)[0]
    pitch = auto.detect(note[None, :])[0]
    assert len(auto.candidates(note, pitch)) == len(off.candidates(note, pitch)) + 8
    assert COMPACT_DIMS < BANDS * SEGMENTS
