"""Preset folders for macOS, Windows and Linux, resolved in temp dirs with an injected OS and home."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from deepdiva.core.errors import PresetError
from deepdiva.presets.folders import (
    amsynth_banks_dir,
    diva_root_candidates,
    find_diva_root,
    preset_location,
    safe_name,
    user_presets_dir,
)


def make(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return make(tmp_path / "home")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "presets"


def windows_env(tmp_path: Path) -> dict[str, str]:
    return {"CommonProgramFiles": str(tmp_path / "cpf"), "ProgramFiles": str(tmp_path / "pf"),
            "SystemDrive": str(tmp_path / "c")}


def test_linux_prefers_diva_then_diva_data(home: Path, data_dir: Path) -> None:
    data = make(home / ".u-he" / "Diva.data")
    assert find_diva_root("Linux", home, {}) == data
    diva = make(home / ".u-he" / "Diva")
    location = preset_location(system="Linux", home=home, env={}, data_dir=data_dir)
    assert location.root == diva and not location.fallback
    assert location.folder == diva / "UserPresets" / "Diva" / "deepdiva" and location.folder.is_dir()


def test_macos_user_then_system_library(home: Path, tmp_path: Path) -> None:
    system_root = tmp_path / "sys"
    system = make(system_root / "Library/Audio/Presets/u-he/Diva")
    assert find_diva_root("Darwin", home, {}, system_root) == system
    user = make(home / "Library/Audio/Presets/u-he/Diva")
    location = preset_location(system="Darwin", home=home, env={}, system_root=system_root)
    assert location.root == user and location.folder == user / "UserPresets/Diva/deepdiva"


def test_windows_documents_then_beside_the_plugin(home: Path, tmp_path: Path) -> None:
    env = windows_env(tmp_path)
    assert find_diva_root("Windows", home, env) is None
    old_style = make(tmp_path / "c" / "VstPlugins" / "u-he" / "Diva.data")
    assert find_diva_root("Windows", home, env) == old_style
    vst3 = make(tmp_path / "cpf" / "VST3" / "Diva.data")
    assert find_diva_root("Windows", home, env) == vst3
    documents = make(home / "Documents" / "u-he" / "Diva.data")
    location = preset_location(system="Windows", home=home, env=env)
    assert location.root == documents and location.folder == documents / "UserPresets/Diva/deepdiva"


def test_windows_home_from_userprofile(tmp_path: Path) -> None:
    env = {**windows_env(tmp_path), "USERPROFILE": str(tmp_path / "me")}
    assert diva_root_candidates("Windows", env=env)[0] == tmp_path / "me" / "Documents" / "u-he" / "Diva.data"


def test_older_presets_folder_used_when_no_userpresets(home: Path) -> None:
    root = make(home / ".u-he" / "Diva")
    older = make(root / "Presets" / "Diva")
    assert user_presets_dir(root) == older
    make(root / "UserPresets" / "Diva")
    assert user_presets_dir(root) == root / "UserPresets" / "Diva"


@pytest.mark.parametrize("system", ["Linux", "Darwin", "Windows"])
def test_fallback_when_no_diva(system: str, home: Path, data_dir: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="deepdiva.presets.folders"):
        location = preset_location(system=system, home=home, env=windows_env(tmp_path),
                                   system_root=tmp_path / "sys", data_dir=data_dir)
    assert location.fallback and location.root is None
    assert location.folder == data_dir and data_dir.is_dir()
    assert location.searched and "no u-he Diva preset folder found" in caplog.text


def test_explicit_folder_wins(home: Path, tmp_path: Path, monkeypatch) -> None:
    make(home / ".u-he" / "Diva")
    mine = tmp_path / "mine" / "presets"
    location = preset_location(mine, system="Linux", home=home, env={})
    assert location.folder == mine and mine.is_dir() and not location.fallback
    monkeypatch.setenv("HOME", str(home))
    assert preset_location("~/x", create=False).folder == home / "x"
    assert not (home / "x").exists()


def test_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(PresetError, match="cannot create preset folder .*--preset-dir"):
        preset_location(tmp_path / "file" / "sub")


@pytest.mark.parametrize("text,expected", [
    ("kick", "kick"), ("a/b\\c:d", "a_b_c_d"), ("  ..  ", "deepdiva"), ('x<>"|?*', "x______"),
    ("tab\there", "tab_here"), ("ü.wav", "ü.wav"),
])
def test_safe_name(text: str, expected: str) -> None:
    assert safe_name(text) == expected


def test_amsynth_presets_go_to_its_banks_folder(home: Path, data_dir: Path, tmp_path: Path, caplog) -> None:
    assert amsynth_banks_dir(home, {}) == home / ".local/share/amsynth/banks"
    assert amsynth_banks_dir(home, {"XDG_DATA_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg/amsynth/banks"
    with caplog.at_level(logging.WARNING):  # amsynth never ran here: deepdiva's own folder, said
        location = preset_location(synth="amsynth", home=home, env={}, data_dir=data_dir)
    assert location.fallback and location.folder == data_dir / "amsynth" and "no amsynth data folder" in caplog.text
    make(home / ".local/share/amsynth")  # made by amsynth on its first start; banks/ may not be there yet
    location = preset_location(synth="amsynth", home=home, env={}, data_dir=data_dir)
    assert not location.fallback and location.folder == home / ".local/share/amsynth/banks" and location.folder.is_dir()
