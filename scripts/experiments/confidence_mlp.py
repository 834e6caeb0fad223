"""Could a bigger confidence pick better answers than the refitted linear one? (An experiment, not a tool.)

Reads a refit's kept scores (``deepdiva refit-confidence --cache DIR``: per target the trunk's 384
numbers and each answer's distance and SC as ``--no-score`` finishes it), fits on the first 80 %
and reports, on the last 20 %, the median MR-STFT / SC of the answer picked by: the model's own
confidence, each fixed answer, a random one, the closest (what a perfect confidence would pick), the
linear refit (:func:`deepdiva.training.confidence.fit_confidence`) and small MLPs trained to the
same soft labels.

    .venv/bin/python scripts/experiments/confidence_mlp.py MODEL.onnx CACHE_DIR
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np

from deepdiva.training import confidence as conf


def load(folder: str) -> conf.AnswerScores:
    parts = []
    for path in sorted(glob.glob(os.path.join(folder, "scores-*.npz"))):
        with np.load(path) as z:  # files kept before answers were marked mute have no "mute"
            parts.append(conf.AnswerScores(z["embedding"], z["distance"], z["convergence"],
                                           z["mute"] if "mute" in z.files else None))
    return conf.AnswerScores.concat(parts)


def mlp_picks(fit: conf.AnswerScores, test: conf.AnswerScores, hidden: int, dropout: float, l2: float) -> np.ndarray:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    labels = conf.soft_labels(fit.cost.astype(np.float64)).astype(np.float32)
    mean, std = fit.embedding.mean(0), fit.embedding.std(0) + 1e-6
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((fit.embedding.shape[1],)), keras.layers.Dropout(0.1),
        keras.layers.Dense(hidden, activation="gelu", kernel_regularizer=keras.regularizers.l2(l2)),
        keras.layers.Dropout(dropout), keras.layers.Dense(labels.shape[1])])
    model.compile(keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    model.fit((fit.embedding - mean) / std, labels, epochs=60, batch_size=128, verbose=0, validation_split=0.1,
              callbacks=[keras.callbacks.EarlyStopping(patience=8, restore_best_weights=True)])
    return np.argmax(model.predict((test.embedding - mean) / std, verbose=0), axis=1)


def main(model_path: str, folder: str) -> None:
    import onnx

    scores = load(folder)
    fit, test = conf.split(scores, 0.2)
    proto = onnx.load(model_path)
    weight, bias = conf.layer_weights(proto, conf.confidence_layer(proto))
    n = len(test.distance)

    def show(name: str, picks: np.ndarray) -> None:
        s = conf.summary(test, picks)
        print(f"{name:28s} {s['mrstft_median']:.3f} / {s['sc_median']:.3f}")

    print(f"{len(fit.distance)} targets fitted, {n} held out; median MR-STFT / SC of the picked answer")
    show("the model's confidence", conf.chosen(test, weight, bias))
    show("closest (perfect pick)", np.argmin(test.distance, axis=1))
    show("random", np.random.default_rng(0).integers(0, test.distance.shape[1], n))
    for h in range(test.distance.shape[1]):
        show(f"always answer {h}", np.full(n, h))
    show("linear refit", conf.chosen(test, *conf.fit_confidence(fit.embedding, fit.cost, weight, bias)))
    for hidden, dropout, l2 in [(128, 0.2, 1e-3), (256, 0.3, 1e-4), (512, 0.5, 1e-4)]:
        show(f"MLP {hidden}, dropout {dropout}", mlp_picks(fit, test, hidden, dropout, l2))


if __name__ == "__main__":
    main(*sys.argv[1:3])
