"""Checkers for notebook 03 (fine-tuning): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb03
>>> exercises.check("03.2", 1e-2, widget=False)
[ex 03.2] not yet: 0.01 is a learning rate for training from scratch (or higher): in the notebook it wrecked the pretrained features. Fine-tuning uses 10 to 100 times smaller steps.
False
"""

from __future__ import annotations

import functools

import numpy as np

from tltutor import exercises

__all__ = ["check_fixed_model", "check_lr", "check_trainable_params", "param_counts"]

NUM_CLASSES = 5
SAFE_LR = (1e-5, 1e-3)  # Adam, fine-tuning every layer of a pretrained base


# --------------------------------------------------------------------------- 03.1


@functools.cache
def param_counts() -> dict[str, int]:
    """Trainable parameter counts of a TLNet transfer model under several freezing choices.

    >>> param_counts()["block3"]
    55621
    """
    from tltutor import models

    def count(unfreeze) -> int:
        model = models.build_model(models.tlnet(), NUM_CLASSES)
        return models.trainable_summary(models.freeze(model, unfreeze=unfreeze))["trainable_params"]

    model = models.build_model(models.tlnet(), NUM_CLASSES)
    summary = models.trainable_summary(model)
    head = count(0)
    block3 = count("block3")
    bn_block3 = sum(
        int(np.prod(v.shape)) for name in ("block3_bn1", "block3_bn2") for v in model.layers[1].get_layer(name).trainable_weights
    )
    return {
        "block3": block3,
        "head": head,
        "block3_without_head": block3 - head,
        "block3_with_bn": block3 + bn_block3,
        "top1": count(1),
        "all": count("all"),
        "everything": summary["trainable_params"] + summary["non_trainable_params"],
        "all_with_bn": summary["trainable_params"],
    }


@exercises.exercise(
    "03.1",
    "Unfreeze the top block",
    name="trainable_params",
    hints=[
        "`models.freeze(model, unfreeze='block3')` makes block3 (and the head) trainable and keeps everything else frozen.",
        "`models.trainable_summary(model)['trainable_params']` counts what will learn.",
    ],
)
def check_trainable_params(answer) -> tuple[bool, str]:
    """03.1: trainable parameters of build_model(course base, 5) after freeze(..., unfreeze="block3")."""
    if isinstance(answer, dict) and "trainable_params" in answer:
        return False, "that is the whole summary; give just its 'trainable_params' entry (a number)."
    ok, message = exercises.expect_number(answer, 0)
    if not ok:
        return False, message
    value = float(answer)
    counts = param_counts()
    if value == counts["block3"]:
        return True, (
            f"{counts['block3']:,} trainable parameters: block3's two convolutions and the head; the "
            f"{counts['all'] - counts['block3']:,} convolution parameters of blocks 1-2 and all BatchNorm parameters stay frozen."
        )
    explanations = {
        "head": "only the head learns: that is feature extraction (unfreeze=0). Unfreeze block3 too.",
        "block3_without_head": "that is block3 without the head; the new head must learn as well (freeze keeps it trainable).",
        "block3_with_bn": "this counts block3's BatchNorm scales and offsets too; freeze keeps BatchNorm frozen. Use its count.",
        "top1": "that is the top convolution only (unfreeze=1); block3 has two convolutions: unfreeze='block3'.",
        "all": "that is every convolution (unfreeze='all'); this exercise unfreezes only the top block.",
        "everything": "that is every parameter of the model (trainable and frozen); count only the trainable ones.",
        "all_with_bn": "that is a fully trainable model (nothing frozen); call models.freeze(model, unfreeze='block3') first.",
    }
    for key, explanation in explanations.items():
        if value == counts[key]:
            return False, f"{value:,.0f}: {explanation}"
    return False, f"{value:,.0f} is not the count of block3 plus the head; use `models.trainable_summary(model)['trainable_params']`."


# --------------------------------------------------------------------------- 03.2


@exercises.exercise(
    "03.2",
    "A safe fine-tuning learning rate",
    name="finetune_lr",
    hints=[
        "Look at the learning-rate experiment above: which rates kept (or improved) the linear probe's accuracy?",
        "Training from scratch with Adam often uses 1e-3; fine-tuning every layer uses 10 to 100 times less.",
    ],
)
def check_lr(answer) -> tuple[bool, str]:
    """03.2: a learning rate (Adam) for fine-tuning every layer of a pretrained base: 1e-5 to 1e-3."""
    ok, message = exercises.expect_number(answer)
    if not ok:
        return False, message
    lr = float(answer)
    low, high = SAFE_LR
    if lr <= 0:
        return False, f"{lr:g}: a learning rate must be positive; with 0 nothing changes, below 0 the loss goes up."
    if lr > 1:
        return False, f"{lr:g} is far too large; learning rates are fractions such as 3e-4 (0.0003)."
    if lr > high:
        return False, (
            f"{lr:g} is a learning rate for training from scratch (or higher): in the notebook it wrecked the "
            "pretrained features. Fine-tuning uses 10 to 100 times smaller steps."
        )
    if lr < low:
        return False, f"{lr:g} is so small that the weights barely move in a few epochs: the model stays a linear probe."
    return True, f"{lr:g} adapts the pretrained features without wrecking them (safe range for Adam: {low:g} to {high:g})."


# --------------------------------------------------------------------------- 03.3


@functools.cache
def _course_kernel() -> np.ndarray:
    from tltutor import models

    return models.get_base("TLNet", weights="course").get_layer("block1_conv1").get_weights()[0]


def _find_layer(model, name: str):
    """The first layer called ``name`` in ``model`` or a model nested in it, else None."""
    import keras

    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model):
            found = _find_layer(layer, name)
            if found is not None:
                return found
    return None


def _has_batchnorm(model) -> bool:
    import keras

    return any(
        isinstance(layer, keras.layers.BatchNormalization)
        or (isinstance(layer, keras.Model) and _has_batchnorm(layer))
        for layer in model.layers
    )


@exercises.exercise(
    "03.3",
    "Fix the BatchNorm setup",
    name="fixed_model",
    hints=[
        "`models.build_model(base, 5)` calls the base with `training=False`: its BatchNorm layers keep their "
        "pretrained statistics even when the convolutions learn.",
        "`models.freeze(model, unfreeze='all')` unfreezes every convolution and keeps BatchNorm frozen.",
        "`fixed_model = models.freeze(models.build_model(models.get_base('TLNet', weights='course'), 5), unfreeze='all')`",
    ],
)
def check_fixed_model(answer) -> tuple[bool, str]:
    """03.3: a fine-tunable model on the course base whose BatchNorm layers all run in inference mode."""
    from tltutor import models

    ok, message = exercises.expect_model(answer, input_shape=(32, 32, 3), num_outputs=NUM_CLASSES)
    if not ok:
        return False, message
    if not _has_batchnorm(answer):
        return False, "this model has no BatchNorm layers; fine-tune the course base (`models.get_base('TLNet', weights='course')`)."
    try:
        rows = models.bn_report(answer, np.zeros((4, 32, 32, 3), "uint8"))
    except Exception as error:
        return False, (
            f"cannot read the BatchNorm layers of this model ({type(error).__name__}); "
            "build it with `models.build_model(base, 5)`."
        )
    training = [row["layer"] for row in rows if row["mode"] == "training"]
    if training:
        return False, (
            f"{len(training)} of {len(rows)} BatchNorm layers (e.g. {training[0]}) would run in training mode: "
            "they would normalise with the statistics of small fine-tuning batches and overwrite the pretrained "
            "moving statistics. Call the base with training=False (build_model does) or keep BatchNorm frozen (freeze does)."
        )
    trainable = models.trainable_summary(answer)["trainable_layers"]
    if not any(name.startswith("block") and "_conv" in name for name in trainable):
        return False, "BatchNorm is safe now, but no convolution can learn: that is feature extraction. Unfreeze the base (freeze(model, unfreeze='all'))."
    conv = _find_layer(answer, "block1_conv1")
    if conv is None:
        return False, "this model has no layer block1_conv1; build it on the course base, `models.get_base('TLNet', weights='course')`."
    kernel, reference = np.ravel(conv.get_weights()[0]), np.ravel(_course_kernel())
    if kernel.shape != reference.shape or np.corrcoef(kernel, reference)[0, 1] < 0.5:
        return False, "the base does not hold the course-pretrained weights (weights=None?); use `models.get_base('TLNet', weights='course')`."
    return True, f"all {len(rows)} BatchNorm layers run in inference mode with their pretrained statistics, and the convolutions can learn."
