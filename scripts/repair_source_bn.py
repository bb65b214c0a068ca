"""Repair shipped zoo checkpoints whose BatchNorm statistics were moved towards the test images.

Before issue 12's fix, ``pretrain`` measured the training-mode accuracy *after* recalibrating
BatchNorm, and that call moved the moving statistics towards the test batches before saving.
The trained weights and both recorded accuracies are unaffected (both were measured before or
independently of that move), so a checkpoint is repaired exactly by recomputing its statistics
as ``tltutor.sources.pretrain`` does: ``recalibrate_bn`` on the first 20000 of its training
images. The metadata is rewritten in the current schema (new sha256 and ``created``).

    python scripts/repair_source_bn.py rotated random_labels digits --out /tmp/repaired
    cp /tmp/repaired/TLNet_source-* tltutor/_data/
"""

import argparse
import json

import keras
import numpy as np

from tltutor import data, models

DERIVED = {
    "keras",
    "sha256",
    "created",
    "keras_version",
    "input_shape",
    "width",
}  # save_source rewrites these


def bn_statistics(base):
    return [
        keras.ops.convert_to_numpy(v).copy()
        for layer in base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in (layer.moving_mean, layer.moving_variance)
    ]


def repair(source: str, out) -> float:
    """Recalibrate the shipped checkpoint of ``source`` into ``out``; the largest relative change."""
    old = json.loads(models.checkpoint_paths("TLNet", source=source)[1].read_text())
    X, _ = data.source_domain(source, "train", full="auto", seed=old["seed"])
    base = models.get_base("TLNet", weights="course", source=source)
    before = bn_statistics(base)
    models.recalibrate_bn(base, X[: old["train_images"]][:20000])
    after = bn_statistics(base)
    models.save_source(base, {k: v for k, v in old.items() if k not in DERIVED}, out_dir=out)
    return max(
        float(np.max(np.abs(a - b) / (np.abs(b) + 1e-3)))
        for a, b in zip(before, after, strict=True)
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sources", nargs="+", choices=sorted(set(data.SOURCE_DOMAINS) - {"backgrounds"})
    )
    parser.add_argument(
        "--out", required=True, help="folder for the repaired files (copy them to tltutor/_data)"
    )
    args = parser.parse_args()
    for name in args.sources:
        print(
            f"{name}: largest relative change of a BN statistic {repair(name, args.out):.3f}",
            flush=True,
        )
