"""Pseudo-labels: recordings labelled by the scored match, for training the network toward them (model v6).

The network alone (``deepdiva match --no-score``) has only ever learnt from the builtin synth's own
renders, whose true patch is known; for a recording there is none. The scored ``deepdiva match``
(the network's eight answers, their enveloped copies, the bank, the plain patches, each rendered
and compared) finds presets far closer to recordings than the network's own choice (README table).
So: label recordings made with other tools by what the scored match writes for them (pseudo-labels)
and train the network on them beside the synth's renders.

    # 1. recordings none of the benchmark's or development sets' (other notes, programs, voices, seeds)
    .venv/bin/python scripts/pseudo_labels.py make --out PL/rec
    # 2. each labelled by MODEL's scored match (resumable, in parts of 100)
    .venv/bin/python scripts/pseudo_labels.py label --rec PL/rec --out PL/ds --model MODEL --like TRAIN
    # 3. the labelled rows as a dataset shard: audio, labels, the network's input and clean sound summaries
    .venv/bin/python scripts/pseudo_labels.py assemble --out PL/ds --like TRAIN
    # 4. a dataset of TRAIN's shards and the labelled shard counted 5 times
    .venv/bin/python scripts/pseudo_labels.py join --builtin TRAIN --pseudo PL/ds --repeat 5 --out PL/mix
    # then: deepdiva train PL/mix --init-from MODEL --sound-proxy ... (scripts/build_model.sh, v6)

TRAIN is the builtin dataset the model was trained on (its augmentation settings and manifest are
used); the recordings need fluidsynth, fluid-soundfont-gm, espeak-ng and amsynth.

Half of the recordings are augmented as the training data is (reverb, noise, gain, tilt, ...; the
builtin dataset's own settings) before they are labelled, so the label is what the match writes
for that take.

Each step hands on what the labels are: ``make`` writes its seed and files per kind (round.json),
``label`` those and the labelling model's file name and sha256 (labelled.json), ``assemble`` every
round's rows kept into the shard's manifest (``pseudo_labels``), ``join`` that and the repeat into
the joined dataset's; ``deepdiva train`` keeps it in the run's config and ``deepdiva export`` writes
it into the model card as ``training.pseudo_labels``.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import dev_sets  # noqa: E402
import ood_sets  # noqa: E402

SR = 44100
SEED = 31  # the benchmark's amsynth patches are seed 7, the development ones seed 8
AUGMENTED_SHARE = 0.5  # of the recordings, augmented as the training data before they are labelled
# what each step leaves for the next, so the model card can say what the network was trained on:
ROUND_FILE = "round.json"  # make: the seed and the files of each kind
LABELLED_FILE = "labelled.json"  # label: the round's recipe and the model that labelled it
GM_KEYS = range(36, 85)
KITS = (0, 8, 16, 24, 25, 32, 40, 48, 56)
TEXTS = ("aaaaaah", "ooooooh", "eeeeeee", "uuuuuuu", "mmmmmmm", "laaaaaa", "naaaaaa", "ooooaaaa", "iiiiiii",
         "waaaaa", "heeeey", "yeeeaaah", "nooooo", "ooommm", "la la la", "doo doo")
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5", "+adam",
            "+Andy", "+boris", "+david", "+ed", "+john", "+linda", "+max", "+paul", "+robert", "+steph", "+grandpa",
            "+klatt", "+Michael", "+Annie", "+belinda", "+aunty", "+croak")
LANGUAGES = ("en", "en-us", "de", "fr", "es", "it", "nl", "pt", "sv", "pl", "fi", "cs", "el", "hu", "ro", "tr")


def used_gm() -> set[tuple[int, int]]:
    """(program, key) pairs the benchmark's or development sets already play."""
    used = set()
    for rows in (ood_sets.INSTRUMENTS, ood_sets.EXTREMES, dev_sets.INSTRUMENTS, dev_sets.GM_WIDE):
        used |= {(program, key) for _, program, keys, _ in rows for key in keys}
    return used


def make(out: Path, n_gm: int, n_chords: int, n_drums: int, n_voices: int, n_amsynth: int, n_plain: int,
         seed: int = SEED) -> None:
    if seed in (7, 8):
        raise SystemExit("seeds 7 and 8 draw the benchmark's and development sets' amsynth patches")
    used = used_gm()
    free = [(p, k) for p in range(112) for k in GM_KEYS if (p, k) not in used]
    lengths = (0.3, 0.6, 1.0, 1.5, 2.5)

    def gm(d: Path, rng: np.random.Generator) -> None:
        picked = [free[i] for i in rng.choice(len(free), n_gm, replace=False)]
        ood_sets.render_gm(d, [(f"gm{p:03d}-{k}", int(p), int(k), float(rng.choice(lengths))) for p, k in picked])

    kinds = {
        "gm": gm,
        "chords": lambda d, rng: ood_sets.chords(d, _chords(rng, n_chords)),
        "drums": lambda d, rng: ood_sets.drums(d, _drums(rng, n_drums)),
        "voices": lambda d, rng: _voices(d, rng, n_voices),
        "amsynth": lambda d, rng: ood_sets.amsynth(d, n=n_amsynth, seed=seed),
        "plain": lambda d, rng: _plain(d, rng, n_plain),
    }
    for i, (name, make_kind) in enumerate(kinds.items()):
        folder = out / name
        if folder.exists() and any(folder.iterdir()):  # made by an earlier run (each kind draws its own stream)
            print(f"{folder}: kept")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        make_kind(folder, np.random.default_rng([seed, i]))
        print(f"{folder}: {len(list(folder.glob('*.wav')))} files", flush=True)
    from deepdiva.core.atomic import write_json_atomic

    made = {name: len(list((out / name).glob("*.wav"))) for name in kinds}
    write_json_atomic(out / ROUND_FILE, {"make_seed": seed, "kinds": made})


def _chords(rng: np.random.Generator, n: int) -> list[tuple[str, int, str, int]]:
    used = {(p, c, r) for _, p, c, r in ood_sets.CHORDS + dev_sets.CHORDS}
    names = sorted(ood_sets.CHORD_INTERVALS)
    out: list[tuple[str, int, str, int]] = []
    while len(out) < n:
        program, chord, root = int(rng.integers(0, 112)), str(rng.choice(names)), int(rng.integers(40, 68))
        if (program, chord, root) not in used:
            used.add((program, chord, root))
            out.append((f"gm{program:03d}", program, chord, root))
    return out


def _drums(rng: np.random.Generator, n: int) -> list[tuple[str, int, tuple[int, ...]]]:
    used = {(kit, key) for _, kit, keys in ood_sets.DRUMS + dev_sets.DRUMS for key in keys}
    free = [(kit, key) for kit in KITS for key in range(35, 82) if (kit, key) not in used]
    return [(f"kit{kit}", kit, (key,)) for kit, key in (free[i] for i in rng.choice(len(free), n, replace=False))]


def _voices(out: Path, rng: np.random.Generator, n: int) -> None:
    used = {(v, p, t) for v, p, t in ood_sets.VOICES + dev_sets.VOICES}
    made = 0
    while made < n:
        voice = str(rng.choice(LANGUAGES)) + str(rng.choice(VARIANTS))
        pitch, text, speed = int(rng.integers(5, 95)), str(rng.choice(TEXTS)), int(rng.integers(60, 130))
        if (voice, pitch, text) in used:
            continue
        used.add((voice, pitch, text))
        path = out / f"voice-{made:03d}-{voice.replace('+', '')}-{pitch}.wav"
        done = subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(path), text],
                              capture_output=True)
        if done.returncode == 0 and path.exists() and path.stat().st_size > 4000:
            made += 1
        else:
            path.unlink(missing_ok=True)


def _plain(out: Path, rng: np.random.Generator, n: int) -> None:
    """Band-limited squares, triangles and saws at any key, held or plucked, some low-passed."""
    for i in range(n):
        kind = str(rng.choice(("square", "tri", "saw")))
        note = int(rng.integers(33, 97))
        decay = None if rng.random() < 0.5 else float(rng.uniform(0.08, 1.0))
        cutoff = float(rng.choice((1e9, 800.0, 2000.0, 5000.0)))  # 1e9: none (the low-pass is 1.0 exactly there)
        sf.write(out / f"{kind}-{i:03d}-{note}.wav", dev_sets.plain_wave(kind, note, decay, cutoff), SR,
                 subtype="FLOAT")


# --------------------------------------------------------------------------- labels

def label(rec: Path, out: Path, model: Path, like: Path, worker: int, workers: int, part_size: int = 100) -> None:
    """Label every ``workers``-th recording (from ``worker``) by the scored match, in parts of
    ``part_size`` written atomically (a rerun skips the parts done)."""
    from deepdiva.core.atomic import write_atomic, write_json_atomic
    from deepdiva.core.audio import prepare_note, raised_to_nominal, read_audio
    from deepdiva.core.errors import DeepDivaError
    from deepdiva.core.matcher import Matcher
    from deepdiva.training.augment import AugmentConfig, augment_audio
    from deepdiva.training.dataset import Dataset

    logging.disable(logging.WARNING)
    files = sorted(rec.rglob("*.wav"))
    files = [files[i] for i in np.random.default_rng(SEED).permutation(len(files))][worker::workers]
    augment = AugmentConfig(**Dataset.open(like).manifest["spec"]["augment"])
    matcher = Matcher.load(model, intra_op_threads=1)
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / LABELLED_FILE, labelled_by(rec, model))
    for start in range(0, len(files), part_size):
        path = parts / f"w{worker}-{start:05d}.npz"
        if path.exists():
            continue
        rng = np.random.default_rng([SEED, worker, start])
        rows: dict[str, list] = {k: [] for k in ("audio", "params", "notes", "heard", "distance", "source", "chord")}
        for f in files[start:start + part_size]:
            try:
                note = prepare_note(read_audio(f))
                if rng.random() < AUGMENTED_SHARE:
                    note = raised_to_nominal(augment_audio(augment, rng, note[None, :], SR))[0]
                heard = matcher.detect(note[None, :])[0]
                m = matcher.match(note, render=False)
            except DeepDivaError as exc:
                print(f"  {f.name}: {exc}", flush=True)
                continue
            rows["audio"].append(note.astype(np.float32))
            rows["params"].append(m.params.astype(np.float32))
            rows["notes"].append(m.played.midi_float)
            rows["heard"].append(np.nan if heard.hz is None else heard.midi_float)
            rows["distance"].append(m.distance)
            rows["source"].append(str(f.relative_to(rec)))
            rows["chord"].append(m.chord is not None)
        write_atomic(path, partial(_save_npz, arrays={k: np.asarray(v) for k, v in rows.items()}))
        print(f"worker {worker}: {min(start + part_size, len(files))} of {len(files)}", flush=True)


def labelled_by(rec: Path, model: Path) -> dict:
    """What a round's labels are: its recordings' recipe (``make``'s, if it left one) and the model
    whose scored match (with the shipped bank, as ``deepdiva match`` runs by default) labelled them."""
    import hashlib

    made = rec / ROUND_FILE
    recipe = json.loads(made.read_text()) if made.exists() else {}
    return {**recipe, "augmented_share": AUGMENTED_SHARE,
            "labelled_by": {"model_file": model.name, "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
                            "match": "deepdiva match, scored, with the shipped bank"}}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:  # a file object: np.savez would add ".npz" to a temp file's name
        np.savez(fh, **arrays)


def assemble(out: Path, like: Path, workers: int, also: tuple[Path, ...] = ()) -> None:
    """The labelled parts (``out``'s and those of the earlier rounds ``also``) as one dataset shard
    (audio, params, notes) with ``like``'s manifest, its network input (``mel_db_pitch`` and the
    pitch heard) and its labels' clean sound summaries."""
    from deepdiva.core.pitch import DEFAULT_MIDI
    from deepdiva.training.dataset import Dataset
    from deepdiva.training.features_cache import cache_features
    from deepdiva.training.sound_proxy import sound_summaries

    keys = ("audio", "params", "notes", "heard", "chord")
    rounds = (out, *also)
    loaded = []
    for r, part in ((r, p) for r, d in enumerate(rounds) for p in sorted((d / "parts").glob("w*.npz"))):
        with np.load(part) as z:
            loaded.append({**{k: z[k] for k in keys}, "round": np.full(len(z["params"]), r)})
    data = {k: np.concatenate([part[k] for part in loaded]) for k in (*keys, "round")}
    # a row is kept when the key it was matched at is the pitch the training step will read in it (the
    # labels are restated from one to the other by a few cents at most, never a different note or octave)
    heard = np.where(np.isfinite(data["heard"]), data["heard"], float(DEFAULT_MIDI))
    keep = np.abs(data["notes"] - heard) < 0.5
    print(f"{keep.sum()} of {keep.size} rows kept ({(~keep).sum()} matched at a key other than the one read; "
          f"{data['chord'].sum()} chords)")
    shard = out / "shard-00000"
    shard.mkdir(exist_ok=True)
    for name in ("audio", "params", "notes"):
        np.save(shard / f"{name}.npy", data[name][keep].astype(np.float32))
    manifest = json.loads((like / "manifest.json").read_text())
    manifest["shards"] = [{"index": 0, "name": "shard-00000", "n": int(keep.sum()), "silent": 0, "regenerated": 0}]
    manifest["spec"]["keep_audio"] = True
    manifest["spec"]["sample_size"] = int(keep.sum())
    manifest["spec"]["n_shards"] = 1
    manifest["pseudo_labels"] = provenance(rounds, np.bincount(data["round"][keep], minlength=len(rounds)))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    ds = Dataset.open(out)
    cache_features(ds, "mel_db_pitch", workers=workers)
    sound_summaries(ds, workers=workers)


def provenance(rounds: tuple[Path, ...], kept: np.ndarray) -> dict:
    """The labelled shard's provenance for its manifest (and, through ``deepdiva train``, the model
    card): the rows kept, and per round (as ``rounds`` lists them: this one, then the earlier ones
    ``assemble --also`` joined) its rows, recipe and labelling model."""
    per_round = []
    for folder, n in zip(rounds, kept, strict=True):
        labelled = folder / LABELLED_FILE
        per_round.append({"recordings": int(n), **(json.loads(labelled.read_text()) if labelled.exists() else {})})
    return {"recordings": int(kept.sum()), "rounds": per_round}


def join(builtin: Path, pseudo: Path, repeat: int, out: Path) -> None:
    """A dataset of ``builtin``'s shards and ``repeat`` links to ``pseudo``'s one shard (so it weighs
    ``repeat`` times its size in each epoch), every shard linked, not copied."""
    manifest = json.loads((builtin / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for shard in manifest["shards"]:
        _link(builtin / shard["name"], out / shard["name"])
        shards.append(shard)
    labelled = json.loads((pseudo / "manifest.json").read_text())
    n = labelled["shards"][0]["n"]
    if "pseudo_labels" in labelled:
        manifest["pseudo_labels"] = {**labelled["pseudo_labels"], "repeat": repeat}
    for r in range(repeat):
        name = f"shard-p{r}"
        _link(pseudo / "shard-00000", out / name)
        shards.append({"index": len(shards), "name": name, "n": n, "silent": 0, "regenerated": 0})
    manifest["shards"] = shards
    manifest["spec"]["n_shards"] = len(shards)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.copy(builtin / "features.json", out / "features.json")
    print(f"{out}: {len(manifest['shards'])} shards")


def _link(src: Path, dst: Path) -> None:
    if not dst.exists():
        dst.symlink_to(src.resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--seed", type=int, default=SEED, help="another seed draws another set (a second round)")
    for kind, n in (("gm", 1200), ("chords", 300), ("drums", 250), ("voices", 500), ("amsynth", 600), ("plain", 300)):
        m.add_argument(f"--n-{kind}", type=int, default=n)
    lab = sub.add_parser("label")
    lab.add_argument("--rec", type=Path, required=True)
    lab.add_argument("--out", type=Path, required=True)
    lab.add_argument("--model", type=Path, required=True, help="the model whose scored match labels them")
    lab.add_argument("--like", type=Path, required=True, help="the builtin dataset (its augmentation)")
    lab.add_argument("--workers", type=int, default=2)
    lab.add_argument("--worker", type=int, default=None, help="run one worker here (default: all, as processes)")
    a = sub.add_parser("assemble")
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--like", type=Path, required=True, help="the builtin dataset (its manifest)")
    a.add_argument("--workers", type=int, default=2)
    a.add_argument("--also", type=Path, nargs="*", default=[], help="earlier rounds' label folders to join in")
    j = sub.add_parser("join")
    j.add_argument("--builtin", type=Path, required=True)
    j.add_argument("--pseudo", type=Path, required=True)
    j.add_argument("--repeat", type=int, default=3)
    j.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.step == "make":
        make(args.out, args.n_gm, args.n_chords, args.n_drums, args.n_voices, args.n_amsynth, args.n_plain, args.seed)
    elif args.step == "label" and args.worker is not None:
        label(args.rec, args.out, args.model, args.like, args.worker, args.workers)
    elif args.step == "label":
        procs = [subprocess.Popen([sys.executable, __file__, "label", "--rec", str(args.rec), "--out", str(args.out),
                                   "--model", str(args.model), "--like", str(args.like),
                                   "--workers", str(args.workers), "--worker", str(w)]) for w in range(args.workers)]
        if any(p.wait() for p in procs):
            raise SystemExit("a labelling worker failed")
    elif args.step == "assemble":
        assemble(args.out, args.like, args.workers, tuple(args.also))
    else:
        join(args.builtin, args.pseudo, args.repeat, args.out)


if __name__ == "__main__":
    main()
