"""tltutor's benchmark suite: ratios measured side by side in one run (absolute times are for the record).

    python bench/bench.py --quick                     # about 2 minutes on 2 CPU cores
    python bench/bench.py --json out/bench.json       # full budgets, results as JSON
    python bench/bench.py --notebooks                 # also time every notebook (several minutes)
    KERAS_BACKEND=jax python bench/bench.py --quick   # on a GPU: adds mixed precision and jit sections

Sections (each prints one line with its ratio and goal):

1. ``cached``: a head trained on cached features vs the same head trained through the frozen base (goal >= 5x).
2. ``overhead``: tltutor's ``train.fit`` vs plain compile + ``model.fit`` on the same model and data (goal <= 5 %).
3. ``pipeline``: training from a ``tf.data`` pipeline (``data.make_dataset``) vs from in-memory arrays
   (goal >= 0.9x; TensorFlow backend only).
4. ``probe``: ``train.train_head`` (60 epochs in one pass over shuffled indices) vs the same linear
   probe trained by ``model.fit(epochs=60)`` (a data iterator per epoch) on course features of 100
   and 500 target images, with both probes' test accuracy (goal >= 2x at the same accuracy).
5. ``recalibrate``: ``models.recalibrate_bn`` on a trained TLNet, one pass over the images in all
   (the layers form a chain; each batch's activations kept) vs one pass per BatchNorm layer (the
   general path), on 500 and 4000 images, with the same statistics to the last bit (goal >= 2x).
6. ``fit``: short training runs from scratch (100 images for 40 epochs, 2000 for 3, batches of 32):
   ``train.fit`` (one ``tf.data`` iterator for every epoch, ``train.training_batches``) vs
   ``model.fit`` on arrays (a new iterator per epoch), with both models' test accuracy on one seed
   (goal >= 1.2x on the small set).
7. ``trace``: a new TLNet's first ``train.fit`` (64 images, one epoch: mostly tracing), its optimizer
   and metric variables created before the first step (``train.create_state``) vs created inside
   it, as Keras does (TensorFlow then traces the step twice); with the number of traces (goal >= 1.3x).
8. ``predict``: ``train.evaluate`` (plain batches through ``predict_on_batch``) vs the same accuracy
   from ``model.predict`` (a ``tf.data`` pipeline per call), on 150, 500 and 1000 test images of
   the course TLNet, repeated calls on one model, with both accuracies (goal >= 1.3x on 500, equal).
9. ``seeds``: three seeds of a short TLNet run from scratch, ``train.map_seeds`` (a worker process
   per seed, one thread each) vs one after the other in this process, for two network sizes, with
   and without the workers' start, and each run's test accuracy (goal >= 1.3x, on two cores).
10. ``notebooks``: each notebook's wall and kernel CPU time against its budget (``budget_s`` in its metadata,
   <= 60 s) and the course total (goal <= 6 min).
11. ``mixed``: on a GPU, training a real-scale backbone (MobileNetV2 at 224x224, all layers) under
   ``mixed_float16`` vs ``float32`` (goal >= 1.5x faster at the same accuracy).
12. ``jit``: on a GPU, the same training step with XLA/jit compilation on vs off.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

import tltutor  # noqa: F401  (before Keras: it keeps TensorFlow's start-up notices quiet)

# isort: split
import keras
import numpy as np

from tltutor import data, gpu, models, train

ROOT = pathlib.Path(__file__).resolve().parents[1]


def timed(function, repeats: int) -> float:
    """Median wall time of ``function()`` over ``repeats`` runs after one warm-up run."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time (the first one includes tracing and compilation)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def cached_vs_frozen(X, y, *, num_epochs: int, repeats: int) -> dict:
    base = models.get_base("TLNet", weights="course")
    model = models.freeze(models.build_model(base, 5), unfreeze=0)
    features = train.extract_features(base, X, cache_dir=False)
    head = keras.Sequential(
        [keras.Input(features.shape[1:]), keras.layers.Dense(5, activation="softmax")]
    )
    Xf = X.astype("float32")
    for m in (model, head):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    frozen = timed(lambda: model.fit(Xf, y, epochs=num_epochs, batch_size=64, verbose=0), repeats)
    cached = timed(
        lambda: head.fit(features, y, epochs=num_epochs, batch_size=64, verbose=0), repeats
    )
    extract = timed(lambda: train.extract_features(base, X, cache_dir=False), repeats)
    return {
        "frozen_base_s": frozen,
        "cached_features_s": cached,
        "feature_extraction_once_s": extract,
        "ratio": frozen / cached,
        "ratio_including_extraction": frozen / (cached + extract),
        "goal": ">= 5",
    }


def fit_overhead(X, y, *, num_epochs: int, repeats: int) -> dict:
    def fresh():
        keras.utils.set_random_seed(0)
        return models.build_model(models.get_base("TLNet", weights="course"), 5)

    Xf = X.astype("float32")
    plain_model, tl_model = fresh(), fresh()

    def plain_fit():  # what train.fit does for you: compile, then fit
        plain_model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        plain_model.fit(Xf, y, epochs=num_epochs, batch_size=64, verbose=0)

    plain = timed(plain_fit, repeats)
    tltutor_fit = timed(
        lambda: train.fit(tl_model, X, y, num_epochs=num_epochs, lr=1e-3, batch_size=64, verbose=0),
        repeats,
    )
    return {
        "model_fit_s": plain,
        "tltutor_fit_s": tltutor_fit,
        "overhead": tltutor_fit / plain - 1,
        "goal": "<= 0.05",
    }


def pipeline_vs_memory(X, y, *, num_epochs: int, repeats: int) -> dict:
    if keras.backend.backend() != "tensorflow":
        return {
            "skipped": f"tf.data pipelines need the TensorFlow backend (this run: {keras.backend.backend()})"
        }
    keras.utils.set_random_seed(0)
    model = train.compile_model(models.build_model(models.get_base("TLNet", weights="course"), 5))
    Xf = X.astype("float32")
    dataset = data.make_dataset(X, y, batch_size=64, seed=0)
    memory = timed(lambda: model.fit(Xf, y, epochs=num_epochs, batch_size=64, verbose=0), repeats)
    pipeline = timed(
        lambda: model.fit(dataset, epochs=num_epochs, shuffle=False, verbose=0), repeats
    )  # it shuffles itself
    return {
        "in_memory_s": memory,
        "tf_data_s": pipeline,
        "ratio": memory / pipeline,
        "goal": ">= 0.9",
    }


def probe_one_pass_vs_epochs(sizes=(100, 500), *, repeats: int) -> dict:
    X_train, y_train, X_test, y_test = data.lab_target()
    base = models.get_base("TLNet", weights="course")
    F_test = train.extract_features(base, X_test[:1000], cache_dir=False)
    results = {}
    for n in sizes:
        F = train.extract_features(base, X_train[:n], cache_dir=False)
        labels = y_train[:n]
        heads = {}

        def one_pass():
            heads["one_pass"] = train.train_head(F, labels, num_classes=5, seed=0)

        template = train.train_head(F, labels, num_classes=5, num_epochs=1)

        def per_epoch():  # the same head, standardisation and optimiser, through model.fit
            keras.utils.set_random_seed(0)
            head = keras.models.clone_model(template)  # built afresh, as train_head builds one
            train.compile_model(head, lr=1e-2)
            head.fit(F, labels, batch_size=64, epochs=60, verbose=0)
            heads["per_epoch"] = head

        t_one = timed(one_pass, repeats)
        t_epochs = timed(per_epoch, repeats)
        accuracy = {k: train.evaluate(h, F_test, y_test[:1000]) for k, h in heads.items()}
        results[n] = {
            "one_pass_s": t_one,
            "per_epoch_s": t_epochs,
            "ratio": t_epochs / t_one,
            "test_accuracy": accuracy,
        }
    return {"sizes": results, "goal": ">= 2 at the same accuracy"}


def fit_one_iterator_vs_per_epoch(runs=((100, 40), (2000, 3)), *, repeats: int) -> dict:
    """Short training runs from scratch: ``train.fit`` (one data iterator for every epoch) against
    ``model.fit`` on arrays (a new iterator per epoch), same compiled model and starting weights."""
    X_train, y_train, X_test, y_test = data.lab_target()
    keras.utils.set_random_seed(0)
    model = train.compile_model(
        train.scratch_model(models.get_base("TLNet", weights=None), 5), lr=2e-3
    )
    start = model.get_weights()
    results = {}
    for n, num_epochs in runs:
        X, y = data.sample_per_class(X_train, y_train, n // 5, seed=0)

        def restart():
            model.set_weights(start)
            train.reset_optimizer(model)  # step count and moments back to zero

        def one_iterator():
            restart()
            train.fit(
                model, X, y, num_epochs=num_epochs, lr=2e-3, batch_size=32, verbose=0, compile=False
            )

        def per_epoch():
            restart()
            keras.utils.set_random_seed(0)
            model.fit(X.astype("float32"), y, epochs=num_epochs, batch_size=32, verbose=0)

        def accuracy():  # of the last run, BatchNorm recalibrated as the course does after it
            models.recalibrate_bn(model, X)
            return train.evaluate(model, X_test[:1000], y_test[:1000])

        t_one = timed(one_iterator, repeats)
        accuracy_one = accuracy()
        t_epochs = timed(per_epoch, repeats)
        results[f"{len(X)}x{num_epochs}"] = {
            "one_iterator_s": t_one,
            "per_epoch_s": t_epochs,
            "ratio": t_epochs / t_one,
            "test_accuracy": {"one_iterator": accuracy_one, "per_epoch": accuracy()},
        }
    return {"runs": results, "goal": ">= 1.2 on the small set"}


def first_fit_state_first_vs_in_step(*, repeats: int) -> dict:
    """A new model's first ``train.fit``: its training state created first vs inside the traced step."""
    X_train, y_train = data.lab_target()[:2]
    X, y = X_train[:64], y_train[:64]
    create_state = train.create_state

    def first_fit(state_first: bool):
        model = models.build_model(models.get_base("TLNet", weights=None), 5)
        traces = []
        step = model.train_step
        model.train_step = lambda batch: traces.append(1) or step(batch)
        train.create_state = create_state if state_first else (lambda *args, **kwargs: None)
        try:
            start = time.perf_counter()
            train.fit(model, X, y, num_epochs=1, verbose=0)
            return time.perf_counter() - start, len(traces)
        finally:
            train.create_state = create_state

    first_fit(True)  # warm-up: TensorFlow's own first-use costs
    runs = {
        name: [first_fit(state_first) for _ in range(repeats)]
        for name, state_first in (("state_first", True), ("in_step", False))
    }
    seconds = {name: statistics.median(t for t, _ in r) for name, r in runs.items()}
    return {
        **{f"{name}_s": s for name, s in seconds.items()},
        "traces": {name: r[0][1] for name, r in runs.items()},
        "ratio": seconds["in_step"] / seconds["state_first"],
        "goal": ">= 1.3",
    }


def evaluate_plain_batches_vs_predict(sizes=(150, 500, 1000), *, repeats: int) -> dict:
    """``train.evaluate`` against the accuracy computed from ``model.predict``, on one model (the
    course base with a random head: the accuracies only show that both paths agree)."""
    _, _, X_test, y_test = data.lab_target()
    model = models.build_model(models.get_base("TLNet", weights="course"), 5)
    results = {}
    for n in sizes:
        X, y = X_test[:n].astype("float32"), y_test[:n]
        accuracy = {}

        def keras_predict():
            probabilities = model.predict(X, batch_size=256, verbose=0)
            accuracy["keras_predict"] = float(np.mean(np.argmax(probabilities, axis=-1) == y))

        def plain_batches():
            accuracy["plain_batches"] = train.evaluate(model, X, y, batch_size=256)

        seconds = {"keras_predict": timed(keras_predict, repeats)}
        seconds["plain_batches"] = timed(plain_batches, repeats)
        results[n] = {
            **{f"{name}_s": s for name, s in seconds.items()},
            "ratio": seconds["keras_predict"] / seconds["plain_batches"],
            "accuracy": accuracy,
        }
    return {"sizes": results, "goal": ">= 1.3 on 500 images, the same accuracy"}


def seeds_side_by_side(X, y, seeds=(0, 1, 2), *, num_epochs: int) -> dict:
    """Three seeds of a short TLNet run from scratch: one after the other in this process vs
    ``train.map_seeds`` (a worker process per seed, one thread each), for notebook 04's network
    (width 8, batches of 16) and the default one (width 16, batches of 32). The first call starts
    the workers (cold), the second finds them running (warm); each run's test accuracy."""
    _, _, X_test, y_test = data.lab_target()
    results = {}
    for width, batch_size in [(8, 16), (16, 32)]:

        def run(seed):
            keras.utils.set_random_seed(seed)
            model = train.scratch_model(models.tlnet(width=width), 5)
            train.fit(
                model, X, y, num_epochs=num_epochs, lr=2e-3, batch_size=batch_size, seed=seed,
                verbose=0,
            )  # fmt: skip
            models.recalibrate_bn(model, X)
            return train.evaluate(model, X_test[:1000], y_test[:1000])

        runs = {}
        for name, processes in [("here", 1), ("workers", None), ("workers_again", None)]:
            start = time.perf_counter()
            accuracy = train.map_seeds(run, seeds, processes=processes)
            runs[name] = {"s": time.perf_counter() - start, "test_accuracy": accuracy}
        results[f"width {width}, batches of {batch_size}"] = runs
    return {"networks": results, "goal": ">= 1.3x warm on two cores"}


def notebook_times(paths) -> dict:
    """Execute each notebook once; its wall time and kernel CPU time against its budget.

    A notebook's budget is ``budget_s`` in its ``tltutor`` metadata (60 s when absent): the wall
    time it should take on two quiet CPU cores. ``tests/test_notebooks.py`` fails a notebook
    whose student copy takes more than 1.5 times that.
    """
    import nbformat
    from nbclient import NotebookClient

    cpu_cell = "import os as _os\n_t = _os.times()\nprint('KERNEL_CPU_S', _t.user + _t.system)"
    rows = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        budget = float(nb.metadata.get("tltutor", {}).get("budget_s", 60))
        nb.cells.append(nbformat.v4.new_code_cell(cpu_cell))
        start = time.perf_counter()
        NotebookClient(
            nb,
            timeout=900,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
        wall = round(time.perf_counter() - start, 1)
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        cpu = round(float(text.split("KERNEL_CPU_S")[1]), 1) if "KERNEL_CPU_S" in text else None
        rows[path.name] = {
            "seconds": wall,
            "kernel_cpu_s": cpu,
            "budget_s": budget,
            "of_budget": round(wall / budget, 2),
        }
        print(
            f"  {path.name:32} {wall:6.1f} s wall  {cpu or float('nan'):6.1f} s kernel CPU  "
            f"budget {budget:3.0f} s  ({wall / budget:.2f}x)",
            flush=True,
        )
    total = sum(r["seconds"] for r in rows.values())
    return {
        "notebooks": rows,
        "total_s": round(total, 1),
        "slowest_s": max(r["seconds"] for r in rows.values()),
        "over_budget": sorted(name for name, r in rows.items() if r["of_budget"] > 1),
        "goal": "each within its budget (<= 60 s), total <= 360 s",
    }


def _upsample(X: np.ndarray, size: int) -> np.ndarray:
    """Lab images (32x32) to ``size`` by pixel repetition, then cropped: cheap real-scale inputs."""
    factor = -(-size // X.shape[1])
    return np.repeat(np.repeat(X, factor, axis=1), factor, axis=2)[:, :size, :size]


def _train_run(
    arch,
    size,
    X,
    y,
    X_test,
    y_test,
    *,
    policy: str,
    num_epochs: int,
    batch_size: int,
    jit_compile="auto",
    steps: int | None = None,
) -> dict:
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        # BN momentum 0.9: with Keras' 0.99 the moving statistics lag behind a from-scratch run this short
        # and the test accuracy stays at chance (the pitfall of notebook 03)
        base = models.get_base(arch, weights=None, input_shape=(size, size, 3), bn_momentum=0.9)
        model = train.scratch_model(base, 5)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=jit_compile,
        )
        timer = EpochTimer()
        if steps:  # a few steps only (jit off can be very slow)
            X, y = X[: steps * batch_size], y[: steps * batch_size]
        # uint8 batches: a quarter of the bytes to copy to the device; the base rescales on the device
        model.fit(X, y, epochs=num_epochs, batch_size=batch_size, verbose=0, callbacks=[timer])
        steady = statistics.median(timer.times[1:]) if len(timer.times) > 1 else timer.times[0]
        result = {
            "first_epoch_s": timer.times[0],
            "epoch_s": steady,
            "images_per_s": len(X) / steady,
        }
        if X_test is not None:
            result["test_accuracy"] = train.evaluate(model, X_test, y_test, batch_size=batch_size)
        return result
    finally:
        keras.mixed_precision.set_global_policy("float32")


def mixed_vs_float32(arch: str, size: int, *, n: int, num_epochs: int, batch_size: int) -> dict:
    X_pool, y_pool, X_test, y_test = data.lab_target()
    X, y = _upsample(X_pool[:n], size), y_pool[:n]
    X_test, y_test = _upsample(X_test[:1000], size), y_test[:1000]
    runs = {
        policy: _train_run(
            arch,
            size,
            X,
            y,
            X_test,
            y_test,
            policy=policy,
            num_epochs=num_epochs,
            batch_size=batch_size,
        )
        for policy in ("float32", "mixed_float16")
    }
    return {
        "arch": arch,
        "size": size,
        "images": n,
        "num_epochs": num_epochs,
        **runs,
        "ratio": runs["float32"]["epoch_s"] / runs["mixed_float16"]["epoch_s"],
        "accuracy_difference": runs["mixed_float16"]["test_accuracy"]
        - runs["float32"]["test_accuracy"],
        "goal": ">= 1.5 at the same accuracy",
    }


def jit_on_vs_off(
    arch: str, size: int, *, steps: int, batch_size: int, num_epochs: int = 2
) -> dict:
    X_pool, y_pool, _, _ = data.lab_target()
    X = _upsample(X_pool[: steps * batch_size], size)
    runs = {
        f"jit_{flag}": _train_run(
            arch,
            size,
            X,
            y_pool[: len(X)],
            None,
            None,
            policy="float32",
            num_epochs=num_epochs,
            batch_size=batch_size,
            jit_compile=flag,
        )
        for flag in (True, False)
    }
    return {
        "arch": arch,
        "size": size,
        "steps_per_epoch": steps,
        **runs,
        "ratio": runs["jit_False"]["epoch_s"] / runs["jit_True"]["epoch_s"],
    }


def recalibrate_one_pass_vs_per_layer(sizes=(500, 4000), *, repeats: int) -> dict:
    X_train, _, _, _ = data.lab_target()
    base = models.get_base("TLNet", weights="course")
    trained = base.get_weights()
    results = {}
    for n in sizes:
        X = np.resize(X_train, (n, *X_train.shape[1:]))  # repeats the images if n is larger
        times, statistics_of = {}, {}
        for path, limit in [("per_layer", 0), ("one_pass", models._CHAIN_BYTES)]:
            default, models._CHAIN_BYTES = models._CHAIN_BYTES, limit  # 0: the general path
            try:
                base.set_weights(trained)
                times[path] = timed(lambda: models.recalibrate_bn(base, X), repeats)
                statistics_of[path] = base.get_weights()
            finally:
                models._CHAIN_BYTES = default
        results[n] = {
            "one_pass_s": times["one_pass"],
            "per_layer_s": times["per_layer"],
            "ratio": times["per_layer"] / times["one_pass"],
            "identical": all(
                np.array_equal(a, b)
                for a, b in zip(statistics_of["one_pass"], statistics_of["per_layer"])
            ),
        }
    base.set_weights(trained)
    return {"sizes": results, "goal": ">= 2 with identical statistics"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets")
    parser.add_argument(
        "--notebooks", action="store_true", help="also execute and time every notebook"
    )
    parser.add_argument("--gpu-arch", default="MobileNetV2", help="backbone of the GPU sections")
    parser.add_argument("--gpu-size", type=int, default=224, help="image size of the GPU sections")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    n, epochs, repeats = (1000, 2, 3) if args.quick else (3000, 3, 5)
    X_train, y_train, _, _ = data.lab_target()
    X, y = X_train[:n], y_train[:n]
    report = gpu.device_report()
    results = {
        "machine": {
            "platform": platform.platform(terse=True),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "keras": keras.__version__,
            **report,
        },
        "images": n,
        "num_epochs": epochs,
        "repeats": repeats,
    }
    print(f"machine: {results['machine']}", flush=True)
    c = results["cached"] = cached_vs_frozen(X, y, num_epochs=epochs, repeats=repeats)
    print(
        f"cached: head on cached features vs through the frozen base: {c['ratio']:.1f}x faster "
        f"({c['cached_features_s']:.2f} s vs {c['frozen_base_s']:.2f} s, {epochs} epochs of {n} images; goal >= 5x); "
        f"{c['ratio_including_extraction']:.1f}x counting one feature extraction",
        flush=True,
    )
    f = results["overhead"] = fit_overhead(X, y, num_epochs=epochs, repeats=repeats)
    print(
        f"overhead: train.fit vs model.fit: {100 * f['overhead']:+.1f} % "
        f"({f['tltutor_fit_s']:.2f} s vs {f['model_fit_s']:.2f} s; goal <= 5 %)",
        flush=True,
    )
    p = results["pipeline"] = pipeline_vs_memory(X, y, num_epochs=epochs, repeats=repeats)
    print(
        "pipeline: "
        + (
            p["skipped"]
            if "skipped" in p
            else f"tf.data pipeline vs in-memory arrays: {p['ratio']:.2f}x the speed "
            f"({p['tf_data_s']:.2f} s vs {p['in_memory_s']:.2f} s; goal >= 0.9x)"
        ),
        flush=True,
    )
    pr = results["probe"] = probe_one_pass_vs_epochs(repeats=repeats)
    for n, r in pr["sizes"].items():
        print(
            f"probe: {n} feature vectors, 60 epochs in one pass vs model.fit(epochs=60): {r['ratio']:.1f}x faster "
            f"({r['one_pass_s']:.2f} s vs {r['per_epoch_s']:.2f} s); test accuracy "
            f"{r['test_accuracy']['one_pass']:.3f} vs {r['test_accuracy']['per_epoch']:.3f} (goal >= 2x, same accuracy)",
            flush=True,
        )
    fi = results["fit"] = fit_one_iterator_vs_per_epoch(repeats=repeats)
    for run, r in fi["runs"].items():
        print(
            f"fit: {run} (images x epochs) from scratch, train.fit's one data iterator vs model.fit on arrays: "
            f"{r['ratio']:.2f}x faster ({r['one_iterator_s']:.2f} s vs {r['per_epoch_s']:.2f} s); test accuracy "
            f"{r['test_accuracy']['one_iterator']:.3f} vs {r['test_accuracy']['per_epoch']:.3f} (one seed)",
            flush=True,
        )
    rc = results["recalibrate"] = recalibrate_one_pass_vs_per_layer(repeats=repeats)
    for n, r in rc["sizes"].items():
        print(
            f"recalibrate: recalibrate_bn on {n} images, one pass vs one pass per BatchNorm layer: "
            f"{r['ratio']:.1f}x faster ({r['one_pass_s']:.2f} s vs {r['per_layer_s']:.2f} s); "
            f"identical statistics: {r['identical']} (goal >= 2x, identical)",
            flush=True,
        )
    tr = results["trace"] = first_fit_state_first_vs_in_step(repeats=repeats)
    print(
        f"trace: a new TLNet's first train.fit (64 images, 1 epoch), state created first vs in the step: "
        f"{tr['ratio']:.2f}x faster ({tr['state_first_s']:.2f} s vs {tr['in_step_s']:.2f} s; "
        f"{tr['traces']['state_first']} vs {tr['traces']['in_step']} traces of the step; goal >= 1.3x)",
        flush=True,
    )
    ev = results["predict"] = evaluate_plain_batches_vs_predict(repeats=max(repeats, 5))
    for n, r in ev["sizes"].items():
        a = r["accuracy"]
        print(
            f"predict: train.evaluate on {n} images, plain batches vs model.predict: {r['ratio']:.2f}x faster "
            f"({1000 * r['plain_batches_s']:.0f} ms vs {1000 * r['keras_predict_s']:.0f} ms); accuracy "
            f"{a['plain_batches']:.3f} vs {a['keras_predict']:.3f} (goal >= 1.3x on 500, equal)",
            flush=True,
        )
    sd = results["seeds"] = seeds_side_by_side(X, y, num_epochs=epochs)
    for i, (network, r) in enumerate(sd["networks"].items()):
        here, first, again = (r[k]["s"] for k in ("here", "workers", "workers_again"))
        print(
            f"seeds: 3 seeds of a TLNet ({network}) from scratch on {n} images x {epochs} epochs, "
            f"train.map_seeds in worker processes vs one after the other here: "
            f"{here / again:.2f}x faster ({again:.1f} s vs {here:.1f} s), "
            f"{here / first:.2f}x {'counting the workers start' if i == 0 else 'on the first call'} "
            f"({first:.1f} s); test accuracy per seed {[round(a, 3) for a in r['workers']['test_accuracy']]} "
            f"in workers, {[round(a, 3) for a in r['here']['test_accuracy']]} here (goal >= 1.3x)",
            flush=True,
        )
    if args.notebooks:
        nb = results["notebooks"] = notebook_times(
            sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        )
        print(
            f"notebooks: slowest {nb['slowest_s']:.0f} s, over budget: {', '.join(nb['over_budget']) or 'none'}; "
            f"course total {nb['total_s']:.0f} s = {nb['total_s'] / 60:.1f} min (goal <= 6 min)",
            flush=True,
        )
    if report["gpu"]:
        gpu_n, gpu_epochs = 4096, 4
        m = results["mixed"] = mixed_vs_float32(
            args.gpu_arch, args.gpu_size, n=gpu_n, num_epochs=gpu_epochs, batch_size=64
        )
        print(
            f"mixed: {args.gpu_arch} {args.gpu_size}x{args.gpu_size}, mixed_float16 vs float32: {m['ratio']:.2f}x faster "
            f"({m['mixed_float16']['images_per_s']:.0f} vs {m['float32']['images_per_s']:.0f} images/s); "
            f"test accuracy {m['mixed_float16']['test_accuracy']:.3f} vs {m['float32']['test_accuracy']:.3f} "
            f"after {gpu_epochs} epochs (goal >= 1.5x at the same accuracy)",
            flush=True,
        )
        j = results["jit"] = jit_on_vs_off(args.gpu_arch, args.gpu_size, steps=4, batch_size=64)
        print(
            f"jit: XLA/jit compile on vs off: {j['ratio']:.1f}x faster "
            f"({j['jit_True']['images_per_s']:.0f} vs {j['jit_False']['images_per_s']:.0f} images/s)",
            flush=True,
        )
    else:
        print("mixed, jit: no GPU here: skipped (run this script on a GPU machine)")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
