"""Property tests for core/profile.py: normalise/denormalise round trips for every range kind,
clipping warnings, NaN errors, and parameter sets given as ids."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from deepdiva.core.errors import ParameterValueError, ProfileError
from deepdiva.core.profile import ParameterRangeWarning, ParameterSet, load_profile, parse_profile

OCTAVES = [-24.0, -12.0, 0.0, 12.0, 24.0]
LABELS = ["Chorus1", "Phaser1", "Plate1"]
TOY = parse_profile({
    "name": "toy",
    "param": [
        {"id": 0, "name": "cont", "kind": "continuous", "min": -5.0, "max": 5.0, "default": 0.0},
        {"id": 1, "name": "int", "kind": "integer", "min": -3, "max": 23, "default": -2},
        {"id": 2, "name": "oct", "kind": "enumerated", "values": OCTAVES, "default": 0.0},
        {"id": 3, "name": "label", "kind": "enumerated", "labels": LABELS, "default": 1},
        {"id": 4, "name": "fixed", "kind": "placeholder", "default": 7.0},
        {"id": 5, "name": "wide", "kind": "continuous", "min": 30.0, "max": 150.0, "default": 30.0},
    ],
    "sets": {"vary": [0, 1, 2, 3, 5]},
}, "toy.toml")

unit = st.floats(0.0, 1.0)


def one(pid: int) -> ParameterSet:
    return ParameterSet(TOY, str(pid), (pid,))


def to_norm(pid: int, native: float) -> float:
    return float(one(pid).to_normalised(np.array([[native]]))[0, 0])


def to_native(pid: int, normalised: float) -> float:
    return float(one(pid).from_normalised(np.array([[normalised]]))[0, 0])


# --------------------------------------------------------------------------- round trips per kind

@given(st.floats(-5.0, 5.0))
def test_continuous_native_round_trip(x: float) -> None:
    assert to_native(0, to_norm(0, x)) == pytest.approx(x, abs=1e-5)


@given(unit)
def test_continuous_normalised_round_trip(u: float) -> None:
    assert to_norm(5, to_native(5, u)) == pytest.approx(u, abs=1e-6)


@given(st.integers(-3, 23))
def test_integer_round_trip_is_exact(k: int) -> None:
    assert to_native(1, to_norm(1, k)) == k


@given(unit)
def test_integer_from_any_normalised_is_a_step(u: float) -> None:
    value = to_native(1, u)
    assert value == int(value) and -3 <= value <= 23


@given(st.sampled_from(OCTAVES))
def test_enumerated_numeric_round_trip(v: float) -> None:
    assert to_native(2, to_norm(2, v)) == v


@given(unit)
def test_enumerated_numeric_from_any_normalised_is_a_value(u: float) -> None:
    assert to_native(2, u) in OCTAVES


@given(st.integers(0, len(LABELS) - 1))
def test_enumerated_labels_round_trip(index: int) -> None:
    assert to_native(3, to_norm(3, index)) == index
    assert TOY.by_id(3).format_native(to_native(3, to_norm(3, index))) == LABELS[index]


@given(unit, st.floats(-1e6, 1e6))
def test_placeholder_is_fixed(u: float, native: float) -> None:
    assert to_native(4, u) == 7.0
    assert to_norm(4, native) == 0.0


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.just(5)), elements=unit))
def test_quantise_is_idempotent(matrix: np.ndarray) -> None:
    pset = TOY.parameter_set("vary")
    once = pset.quantise(matrix)
    assert once.dtype == np.float32 and once.shape == matrix.shape
    np.testing.assert_array_equal(pset.quantise(once), once)
    discrete = [1, 2, 3]  # columns of int, oct, label: same step exactly; continuous within float32
    np.testing.assert_array_equal(pset.from_normalised(once)[:, discrete],
                                  pset.from_normalised(matrix)[:, discrete])
    np.testing.assert_allclose(pset.from_normalised(once), pset.from_normalised(matrix), rtol=1e-6, atol=1e-5)


@given(unit, unit)
def test_from_normalised_is_monotonic(a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    for pid in (0, 1, 2, 3, 5):
        assert to_native(pid, lo) <= to_native(pid, hi)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_every_diva_parameter_round_trips(data) -> None:
    profile = load_profile("diva")
    pset = ParameterSet(profile, "varying", tuple(p.id for p in profile.parameters if p.kind != "placeholder"))
    u = data.draw(hnp.arrays(np.float64, (2, len(pset)), elements=unit))
    native = pset.from_normalised(u)
    np.testing.assert_allclose(pset.from_normalised(pset.to_normalised(native)), native, atol=1e-4)


def test_diva_defaults_round_trip() -> None:
    profile = load_profile("diva")
    for name in profile.sets:
        pset = profile.parameter_set(name)
        varying = [j for j, p in enumerate(pset.parameters) if p.kind != "placeholder"]
        back = pset.from_normalised(pset.defaults_normalised()[None, :])[0]
        np.testing.assert_allclose(back[varying], pset.defaults_native()[varying], atol=1e-4)


# --------------------------------------------------------------------------- clipping and NaN

@pytest.mark.parametrize("pid,native,normalised", [(0, 9.0, 1.0), (0, -9.0, 0.0), (1, 40, 1.0),
                                                   (2, -48.0, 0.0), (3, 5, 1.0)])
def test_native_out_of_range_clips_with_warning(pid: int, native: float, normalised: float) -> None:
    with pytest.warns(ParameterRangeWarning, match="out of range clipped"):
        assert to_norm(pid, native) == normalised


@pytest.mark.parametrize("u,expected", [(1.5, 5.0), (-0.5, -5.0)])
def test_normalised_out_of_range_clips_with_warning(u: float, expected: float) -> None:
    with pytest.warns(ParameterRangeWarning, match="cont"):
        assert to_native(0, u) == expected


def test_in_range_values_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TOY.parameter_set("vary").from_normalised(np.array([[0.0, 1.0, 0.5, 1.0, 0.0]]))
        to_norm(0, 5.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_raises(bad: float) -> None:
    pset = TOY.parameter_set("vary")
    row = np.array([[0.5, bad, 0.5, 0.5, 0.5]])
    with pytest.raises(ParameterValueError, match="int"):
        pset.from_normalised(row)
    with pytest.raises(ParameterValueError, match="NaN"):
        pset.to_normalised(row)


def test_wrong_shape_raises() -> None:
    with pytest.raises(ParameterValueError, match=r"shape \(n, 5\)"):
        TOY.parameter_set("vary").from_normalised(np.zeros((2, 4)))


# --------------------------------------------------------------------------- sets

def test_set_given_as_ids() -> None:
    profile = load_profile("diva")
    pset = profile.parameter_set("33 34 35")
    assert pset.ids == (33, 34, 35) and [p.location for p in pset.parameters] == \
        ["ENV1:Atk", "ENV1:Dec", "ENV1:Sus"]
    assert profile.parameter_set("33, 34,35").ids == (33, 34, 35)
    assert profile.parameter_set([148, 33]).ids == (148, 33)
    assert len(profile.parameter_set("medium33")) == 33
    assert profile.parameter_set(pset) is pset


@pytest.mark.parametrize("spec,message", [
    ("huge", "unknown parameter set"), ("", "unknown parameter set"), ("33 33", "twice"),
    ("33 9999", "no parameter with id 9999"), ("17", "placeholders"), ([], "at least one"),
])
def test_bad_sets(spec, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        load_profile("diva").parameter_set(spec)


def test_find_by_id_location_and_name() -> None:
    profile = load_profile("diva")
    assert profile.find(33) is profile.find("33") is profile.find("env1:atk") is profile.find(" ENV1:Atk ")
    with pytest.raises(ProfileError, match="ambiguous"):
        profile.find("Attack")
    with pytest.raises(ProfileError, match="unknown"):
        profile.find("Nope")



@pytest.mark.parametrize("profile_name", ["diva", "amsynth"])
def test_a_whole_set_converts_each_column_as_that_parameter_alone(profile_name: str) -> None:
    """The set's conversions work on whole matrices (columns grouped by kind); each column must
    still come out as its parameter alone gives it, in both directions, mixed kinds and all."""
    profile = load_profile(profile_name)
    whole = profile.parameter_set("all")
    rng = np.random.default_rng(3)
    normalised = rng.random((40, len(whole)))
    normalised[:2] = [[0.0], [1.0]]
    native = whole.from_normalised(normalised)
    nudged = native + rng.normal(0.0, 0.01, native.shape)  # between steps, a little out of range
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParameterRangeWarning)
        back = whole.to_normalised(nudged)
        for j, pid in enumerate(whole.ids):
            alone = ParameterSet(profile, str(pid), (pid,))
            np.testing.assert_array_equal(native[:, j], alone.from_normalised(normalised[:, j:j + 1])[:, 0])
            np.testing.assert_array_equal(back[:, j], alone.to_normalised(nudged[:, j:j + 1])[:, 0])


def test_the_diva_profile_is_what_its_build_script_writes() -> None:
    """core/profiles/diva.toml is generated (scripts/build_diva_profile.py): an edit made in one and
    not the other would be lost at the next rebuild."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    csv = root.parent / "shared" / "diva" / "diva_params.csv"
    if not csv.exists():
        pytest.skip(f"Diva's parameter table is not at {csv}")
    spec = importlib.util.spec_from_file_location("build_diva_profile", root / "scripts" / "build_diva_profile.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.build(csv) == (root / "core" / "profiles" / "diva.toml").read_text(encoding="utf-8")
