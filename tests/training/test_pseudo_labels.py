"""scripts/pseudo_labels.py (model v6's recordings): none of the benchmark's or development sets'
sounds, and the joined dataset counts the labelled shard as often as asked."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("pseudo_labels", ROOT / "scripts" / "pseudo_labels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pseudo_labels"] = module
    spec.loader.exec_module(module)
    return module


def test_recordings_are_none_of_the_benchmarks_or_development_sets():
    script = _script()
    ood, dev = script.ood_sets, script.dev_sets
    used = script.used_gm()
    assert (0, 48) in used and (33, 31) in used and (5, 40) in used  # benchmark piano, bass; development gm-wide
    rng = np.random.default_rng(0)
    taken_chords = {(p, c, r) for _, p, c, r in ood.CHORDS + dev.CHORDS}
    chords = script._chords(rng, 200)
    assert len(chords) == 200 and not {(p, c, r) for _, p, c, r in chords} & taken_chords
    taken_drums = {(kit, key) for _, kit, keys in ood.DRUMS + dev.DRUMS for key in keys}
    drums = script._drums(rng, 150)
    assert len({(kit, keys[0]) for _, kit, keys in drums}) == 150
    assert not {(kit, keys[0]) for _, kit, keys in drums} & taken_drums


def test_a_round_cannot_draw_the_benchmarks_or_development_amsynth_patches(tmp_path):
    script = _script()
    for seed in (7, 8):  # ood_sets.amsynth's and dev_sets.amsynth's seeds
        with pytest.raises(SystemExit, match="seeds 7 and 8"):
            script.make(tmp_path, 1, 1, 1, 1, 1, 1, seed=seed)
    assert not any(tmp_path.iterdir())  # refused before anything is made


def test_join_links_every_builtin_shard_and_the_labelled_one_repeated(tmp_path):
    script = _script()
    builtin, pseudo, out = tmp_path / "train", tmp_path / "ds", tmp_path / "mix"
    shards = [{"index": i, "name": f"shard-0000{i}", "n": 5, "silent": 0, "regenerated": 0} for i in range(2)]
    for folder, rows in ((builtin, shards), (pseudo, [dict(shards[0], n=3)])):
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps({"spec": {"n_shards": len(rows)}, "shards": rows}))
        for shard in rows:
            (folder / shard["name"]).mkdir()
            np.save(folder / shard["name"] / "params.npy", np.zeros((shard["n"], 2), np.float32))
    (builtin / "features.json").write_text("{}")
    script.join(builtin, pseudo, 3, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["n"] for s in manifest["shards"]] == [5, 5, 3, 3, 3]
    assert manifest["spec"]["n_shards"] == 5
    assert [s["index"] for s in manifest["shards"]] == list(range(5))
    for shard in manifest["shards"]:
        assert (out / shard["name"]).is_symlink() and (out / shard["name"] / "params.npy").exists()
    assert (out / "shard-p2").resolve() == (pseudo / "shard-00000").resolve()
    script.join(builtin, pseudo, 3, out)  # again: the same links, nothing doubled
    assert len(json.loads((out / "manifest.json").read_text())["shards"]) == 5


def test_each_step_hands_on_what_the_labels_are_so_the_card_can_say_it(tmp_path):
    """make's recipe and the labelling model (label) -> every round's rows kept (assemble) -> the
    joined dataset's manifest with its repeat (join), which ``deepdiva train`` copies into the card."""
    script = _script()
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not really a model")
    rounds = []
    for seed, kinds in ((31, {"gm": 4, "voices": 1}), (32, {"gm": 2, "plain": 3})):
        rec, ds = tmp_path / f"rec{seed}", tmp_path / f"ds{seed}"
        rec.mkdir()
        ds.mkdir()
        (rec / script.ROUND_FILE).write_text(json.dumps({"make_seed": seed, "kinds": kinds}))
        (ds / script.LABELLED_FILE).write_text(json.dumps(script.labelled_by(rec, model)))
        rounds.append(ds)
    said = script.provenance((rounds[1], rounds[0]), np.array([5, 4]))
    assert said["recordings"] == 9
    newest, oldest = said["rounds"]
    assert newest["recordings"] == 5 and newest["make_seed"] == 32 and newest["kinds"] == {"gm": 2, "plain": 3}
    assert oldest["recordings"] == 4 and oldest["make_seed"] == 31 and oldest["augmented_share"] == 0.5
    assert oldest["labelled_by"]["model_file"] == "m.onnx"
    assert oldest["labelled_by"]["model_sha256"] == __import__("hashlib").sha256(b"not really a model").hexdigest()
    # a round labelled before the files were written still counts its rows
    assert script.provenance((tmp_path / "older",), np.array([3])) == {"recordings": 3, "rounds": [{"recordings": 3}]}
    builtin, pseudo = tmp_path / "train", tmp_path / "pseudo"
    for folder, extra in ((builtin, {}), (pseudo, {"pseudo_labels": said})):
        folder.mkdir()
        shard = {"index": 0, "name": "shard-00000", "n": 9, "silent": 0, "regenerated": 0}
        (folder / "manifest.json").write_text(json.dumps({"spec": {"n_shards": 1}, "shards": [shard], **extra}))
        (folder / "shard-00000").mkdir()
    (builtin / "features.json").write_text("{}")
    script.join(builtin, pseudo, 3, tmp_path / "mix")
    assert json.loads((tmp_path / "mix" / "manifest.json").read_text())["pseudo_labels"] == {**said, "repeat": 3}
