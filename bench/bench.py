"""Benchmarks that print ratios measured side by side in one run (absolute times are for the record).

    python bench/bench.py            # full budgets
    python bench/bench.py --quick    # smaller budgets, about a minute
    python bench/bench.py --json out/bench.json

1. A head trained on cached features vs the same head trained through the frozen base
   (goal: >= 5x faster per epoch).
2. tltutor's ``train.fit`` vs plain ``model.fit`` on the same model and data (goal: overhead <= 5 %).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tltutor import data, models, train  # noqa: E402


def timed(function, repeats: int) -> float:
    """Median wall time of ``function()`` over ``repeats`` runs after one warm-up run."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cached_vs_frozen(X, y, *, num_epochs: int, repeats: int) -> dict:
    base = models.get_base("TLNet", weights="course")
    model = models.freeze(models.build_model(base, 5), unfreeze=0)
    features = train.extract_features(base, X, cache_dir=False)
    head = keras.Sequential([keras.Input(features.shape[1:]), keras.layers.Dense(5, activation="softmax")])
    Xf = X.astype("float32")
    for m in (model, head):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    frozen = timed(lambda: model.fit(Xf, y, epochs=num_epochs, batch_size=64, verbose=0), repeats)
    cached = timed(lambda: head.fit(features, y, epochs=num_epochs, batch_size=64, verbose=0), repeats)
    extract = timed(lambda: train.extract_features(base, X, cache_dir=False), repeats)
    return {"frozen_base_s": frozen, "cached_features_s": cached, "feature_extraction_once_s": extract,
            "speedup": frozen / cached, "speedup_including_extraction": frozen / (cached + extract)}


def fit_overhead(X, y, *, num_epochs: int, repeats: int) -> dict:
    def fresh():
        keras.utils.set_random_seed(0)
        return models.build_model(models.get_base("TLNet", weights="course"), 5)

    Xf = X.astype("float32")
    plain_model, tl_model = fresh(), fresh()

    def plain_fit():  # what train.fit does for you: compile, then fit
        plain_model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        plain_model.fit(Xf, y, epochs=num_epochs, batch_size=64, verbose=0)

    plain = timed(plain_fit, repeats)
    tltutor_fit = timed(lambda: train.fit(tl_model, X, y, num_epochs=num_epochs, lr=1e-3, batch_size=64, verbose=0), repeats)
    return {"model_fit_s": plain, "tltutor_fit_s": tltutor_fit, "overhead": tltutor_fit / plain - 1}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    n, epochs, repeats = (1000, 2, 3) if args.quick else (3000, 3, 5)
    X_train, y_train, _, _ = data.lab_target()
    X, y = X_train[:n], y_train[:n]
    results = {
        "machine": {"platform": platform.platform(terse=True), "cpus": os.cpu_count(), "backend": keras.backend.backend(),
                    "keras": keras.__version__},
        "images": n, "num_epochs": epochs, "repeats": repeats,
        "cached_vs_frozen": cached_vs_frozen(X, y, num_epochs=epochs, repeats=repeats),
        "fit_overhead": fit_overhead(X, y, num_epochs=epochs, repeats=repeats),
    }
    c, f = results["cached_vs_frozen"], results["fit_overhead"]
    print(f"machine: {results['machine']}")
    print(f"head on cached features vs through the frozen base: {c['speedup']:.1f}x faster "
          f"({c['cached_features_s']:.2f} s vs {c['frozen_base_s']:.2f} s for {epochs} epochs of {n} images; goal >= 5x); "
          f"{c['speedup_including_extraction']:.1f}x counting one feature extraction")
    print(f"train.fit vs model.fit: overhead {100 * f['overhead']:+.1f} % "
          f"({f['tltutor_fit_s']:.2f} s vs {f['model_fit_s']:.2f} s; goal <= 5 %)")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
