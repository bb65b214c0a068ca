"""Checkers for notebook 03 (fine-tuning): importing this module registers them.

>>> from tltutor import exercises
>>> from tltutor.checks import nb03
>>> exercises.check("03.2", 1e-2, widget=False)
[ex 03.2] not yet: 0.01 wrecked the pretrained features in the notebook: on all three seeds it ended below the linear probe. Stay at or below 3e-4: already 1e-3 moved the features more than twice as far without beating 3e-4 on every seed.
False
"""

from __future__ import annotations

import functools

import numpy as np

from tltutor import exercises

__all__ = [
    "STRATEGY_PAIRS",
    "check_block3_model",
    "check_fixed_model",
    "check_lr",
    "check_raw_model",
    "param_counts",
]

NUM_CLASSES = 5
SAFE_LR = (1e-5, 3e-4 * (1 + 1e-6))  # (float32 3e-4 is 3.0000001e-4)
# Adam, every layer of the course base (notebook 03): 1e-2 wrecked the features on every seed; 1e-3 moved them
# more than twice as far as 3e-4 without beating 3e-4 on every seed
CONVOLUTIONS = tuple(f"block{b}_conv{i}" for b in (1, 2, 3) for i in (1, 2))


# --------------------------------------------------------------------------- shared helpers


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


def _course_weights_problem(model) -> str | None:
    """None when ``model`` holds the course-pretrained TLNet, else what is wrong."""
    conv = _find_layer(model, "block1_conv1")
    if conv is None:
        return "this model has no layer block1_conv1; build it on the course base, `models.get_base('TLNet', weights='course')`."
    kernel, reference = np.ravel(conv.get_weights()[0]), np.ravel(_course_kernel())
    if (
        kernel.shape != reference.shape
        or not np.all(np.isfinite(kernel))
        or np.corrcoef(kernel, reference)[0, 1] < 0.99
    ):
        return "the base does not hold the course-pretrained weights (weights=None?); use `models.get_base('TLNet', weights='course')`."
    return None


def _bn_modes(model) -> tuple[list[str], str | None]:
    """(names of BN layers that would run in training mode inside fit, None) or ([], error message)."""
    from tltutor import models

    try:
        rows = models.bn_report(model, np.zeros((4, 32, 32, 3), "uint8"))
    except Exception as error:  # noqa: BLE001 -- any model a student builds may fail here
        return [], (
            f"cannot read the BatchNorm layers of this model ({type(error).__name__}); "
            "build it as a functional model: inputs -> base(inputs, training=False) -> Dense head."
        )
    return [row["layer"] for row in rows if row["mode"] == "training"], None


def _trainable_layers(model) -> list[str]:
    from tltutor import models

    return models.trainable_summary(model)["trainable_layers"]


# --------------------------------------------------------------------------- 03.0


def _learning_rate(optimizer) -> float | None:
    try:
        return exercises.as_number(optimizer.learning_rate)
    except Exception:  # noqa: BLE001 -- a student's optimizer may be anything
        return None


def _layers_before_base(model) -> list[str]:
    """Names of the layers between the model's input and its nested base (e.g. a second Rescaling)."""
    import keras

    bases = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(bases) != 1 or not hasattr(model, "_nodes_by_depth"):
        return []
    nodes = [
        n for depth in model._nodes_by_depth.values() for n in depth if n.operation is bases[0]
    ]
    before = []
    tensor = nodes[0].input_tensors[0] if nodes and nodes[0].input_tensors else None
    while tensor is not None and tensor is not model.inputs[0]:
        layer = tensor._keras_history.operation
        before.append(layer.name)
        parents = [
            n for depth in model._nodes_by_depth.values() for n in depth if n.operation is layer
        ]
        tensor = parents[0].input_tensors[0] if parents and parents[0].input_tensors else None
    return before


@exercises.exercise(
    "03.0",
    "Fine-tuning in plain Keras",
    name="raw_model",
    hints=[
        (
            "Freeze with `raw_base.trainable = False`, then `inputs = keras.Input((32, 32, 3))`, "
            "`features = raw_base(inputs, training=False)`, a `keras.layers.Dense(5, activation='softmax')` head "
            "and `raw_model = keras.Model(inputs, outputs)`."
        ),
        (
            "Compile (Adam at 1e-2, 'sparse_categorical_crossentropy') and `fit` the head for 15 epochs; then "
            "`raw_base.trainable = True` and compile again with `keras.optimizers.Adam(1e-4)`."
        ),
        "TLNet rescales inside (its first layer is `Rescaling(1/255)`): give it raw pixels, do not divide by 255 again.",
    ],
)
def check_raw_model(answer) -> tuple[bool, str]:
    """03.0: the plain Keras recipe: frozen-then-unfrozen course base, BN in inference mode, recompiled low."""
    ok, message = exercises.expect_model(answer, input_shape=(32, 32, 3), num_outputs=NUM_CLASSES)
    if not ok:
        return False, message
    problem = _course_weights_problem(answer)
    if problem:
        return False, problem
    training, problem = _bn_modes(answer)
    if problem:
        return False, problem
    if training:
        return False, (
            f"{len(training)} BatchNorm layers (e.g. {training[0]}) would run in training mode during fit: "
            "call the base with `raw_base(inputs, training=False)` (step 3)."
        )
    frozen = [name for name in CONVOLUTIONS if name not in _trainable_layers(answer)]
    if frozen:
        return False, (
            f"{len(frozen)} of the base's 6 convolutions (e.g. {frozen[0]}) cannot learn: after training the head, "
            "unfreeze with `raw_base.trainable = True` and compile again (step 5)."
        )
    optimizer = getattr(answer, "optimizer", None)
    if optimizer is None or not getattr(answer, "compiled", False):
        return False, "the model is not compiled: compile it again after unfreezing (step 5)."
    lr = _learning_rate(optimizer)
    if lr is None:
        return (
            False,
            "cannot read the optimizer's learning rate; compile with `keras.optimizers.Adam(1e-4)`.",
        )
    built = getattr(optimizer, "built", False)
    if built and len(optimizer.variables) < 2 * len(answer.trainable_variables):
        return False, (
            "the optimizer was built when only the head could learn: `trainable` takes effect at the next compile. "
            "Call `raw_model.compile(...)` again after `raw_base.trainable = True`."
        )
    if lr > SAFE_LR[1]:
        return False, (
            f"the optimizer's learning rate is {lr:g}: a rate for the new head, not for the pretrained base. "
            "Recompile after unfreezing at a fine-tuning rate such as 1e-4 (section 2 measures which are safe)."
        )
    if lr <= 0 or lr < SAFE_LR[0]:
        return (
            False,
            f"a learning rate of {lr:g} barely moves the weights; recompile at about 1e-4.",
        )
    before = _layers_before_base(answer)
    if before:
        return False, (
            f"the pixels pass through {before[0]} before the base: TLNet preprocesses inside (its first layer is "
            "Rescaling(1/255)), so scaling again feeds it images 255 times too dark. Give it the raw pixels."
        )
    return True, (
        f"the base's 6 convolutions can learn, all BatchNorm layers stay in inference mode, the pixels reach the "
        f"base as it expects them, and the recompiled optimizer runs at {lr:g}."
    )


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

    return {"block3": count("block3"), "head": count(0), "all": count("all")}


@exercises.exercise(
    "03.1",
    "Unfreeze the top block",
    name="block3_model",
    hints=[
        "`models.freeze(model, unfreeze='block3')` makes block3 (and the head) trainable and keeps everything else frozen.",
        (
            "`block3_model = models.freeze(models.build_model(base, NUM_CLASSES), unfreeze='block3')`; "
            "`models.trainable_summary(block3_model)` shows what will learn."
        ),
    ],
)
def check_block3_model(answer) -> tuple[bool, str]:
    """03.1: a build_model model on the course base in which exactly block3's convolutions and the head learn."""
    if isinstance(answer, (int, float, np.number)) and not isinstance(answer, bool):
        return (
            False,
            "give the model itself (`block3_model`), not a number: the check inspects what can learn.",
        )
    ok, message = exercises.expect_model(answer, input_shape=(32, 32, 3), num_outputs=NUM_CLASSES)
    if not ok:
        return False, message
    problem = _course_weights_problem(answer)
    if problem:
        return False, problem
    trainable = _trainable_layers(answer)
    convolutions = [name for name in trainable if name in CONVOLUTIONS]
    batchnorm = [name for name in trainable if "_bn" in name]
    heads = [name for name in trainable if name not in CONVOLUTIONS and name not in batchnorm]
    if batchnorm:
        return False, (
            f"{len(batchnorm)} BatchNorm layers (e.g. {batchnorm[0]}) can learn too: use `models.freeze`, which "
            "keeps BatchNorm frozen, rather than setting `trainable = True` yourself."
        )
    if not heads:
        return (
            False,
            "the head cannot learn: the new head must always train (freeze keeps it trainable).",
        )
    wanted = ["block3_conv1", "block3_conv2"]
    if convolutions == wanted:
        params = int(sum(np.prod(v.shape) for v in answer.trainable_weights))
        return (
            True,
            f"block3's two convolutions and the head learn ({params:,} parameters); blocks 1-2 stay frozen.",
        )
    if not convolutions:
        return (
            False,
            "only the head learns: that is feature extraction (unfreeze=0). Unfreeze block3 too.",
        )
    if set(convolutions) < set(wanted):
        return (
            False,
            f"only {convolutions[0]} learns: block3 has two convolutions; use unfreeze='block3'.",
        )
    extra = sorted(set(convolutions) - set(wanted))
    return False, (
        f"{len(convolutions)} convolutions learn, {', '.join(extra)} outside block3 among them: "
        "unfreeze only the top block (unfreeze='block3')."
    )


# --------------------------------------------------------------------------- 03.2


@exercises.exercise(
    "03.2",
    "A safe fine-tuning learning rate",
    name="finetune_lr",
    hints=[
        "Look at the learning-rate runs: how far each rate moved the features (the feature change), and whether "
        "the larger rate beat the smaller one on every seed.",
        "The course trains from scratch at 2e-3; fine-tuning every layer starts about 10 times lower. Check the "
        "per-seed numbers, not only the mean.",
    ],
)
def check_lr(answer) -> tuple[bool, str]:
    """03.2: a learning rate (Adam) for fine-tuning every layer of the course base: 1e-5 to 3e-4."""
    ok, message = exercises.expect_number(answer)
    if not ok:
        return False, message
    lr = float(answer)
    low, high = SAFE_LR
    if lr <= 0:
        return (
            False,
            f"{lr:g}: a learning rate must be positive; with 0 nothing changes, below 0 the loss goes up.",
        )
    if lr > 1:
        return (
            False,
            f"{lr:g} is far too large; learning rates are fractions such as 3e-4 (0.0003).",
        )
    if lr >= 1e-2:
        return False, (
            f"{lr:g} wrecked the pretrained features in the notebook: on all three seeds it ended below the linear "
            "probe. Stay at or below 3e-4: already 1e-3 moved the features more than twice as far without beating "
            "3e-4 on every seed."
        )
    if lr > 1e-3:
        return False, (
            f"{lr:g} lies between the rates the notebook measured, 1e-3 and the destructive 1e-2, near the course's "
            "from-scratch rate (2e-3): nothing there shows it is safe. Stay at or below 3e-4."
        )
    if lr > high:
        return False, (
            f"{lr:g}: in the notebook's runs 1e-3 moved the features more than twice as far as 3e-4 and did not beat "
            "3e-4 on every seed: more movement, no gain you can count on. Stay at or below 3e-4."
        )
    if lr < low:
        return (
            False,
            f"{lr:g} is so small that the weights barely move in a few epochs: the model stays a linear probe.",
        )
    return True, (
        f"{lr:g}: at or below 3e-4, the largest rate in the notebook that did not move the features further for "
        "nothing (1e-3 moved them more than twice as far without beating 3e-4 on every seed); for a larger base "
        "or fewer labels, go lower (down to about 1e-5)."
    )


# --------------------------------------------------------------------------- 03.3


@exercises.exercise(
    "03.3",
    "Fix the BatchNorm setup",
    name="fixed_model",
    hints=[
        (
            "`models.build_model(base, 5)` calls the base with `training=False`: its BatchNorm layers keep their "
            "pretrained statistics even when the convolutions learn."
        ),
        "`models.freeze(model, unfreeze='all')` unfreezes every convolution and keeps BatchNorm frozen.",
        "`fixed_model = models.freeze(models.build_model(models.get_base('TLNet', weights='course'), 5), unfreeze='all')`",
    ],
)
def check_fixed_model(answer) -> tuple[bool, str]:
    """03.3: every convolution of the course base can learn; every BatchNorm layer runs in inference mode."""
    ok, message = exercises.expect_model(answer, input_shape=(32, 32, 3), num_outputs=NUM_CLASSES)
    if not ok:
        return False, message
    if not _has_batchnorm(answer):
        return (
            False,
            "this model has no BatchNorm layers; fine-tune the course base (`models.get_base('TLNet', weights='course')`).",
        )
    training, problem = _bn_modes(answer)
    if problem:
        return False, problem
    if training:
        return False, (
            f"{len(training)} of 6 BatchNorm layers (e.g. {training[0]}) would run in training mode: "
            "they would normalise with the statistics of small fine-tuning batches and overwrite the pretrained "
            "moving statistics. Call the base with training=False (build_model does) or keep BatchNorm frozen (freeze does)."
        )
    trainable = _trainable_layers(answer)
    learning = [name for name in CONVOLUTIONS if name in trainable]
    if not learning:
        return (
            False,
            "BatchNorm is safe now, but no convolution can learn: that is feature extraction. Unfreeze the base (freeze(model, unfreeze='all')).",
        )
    if len(learning) < len(CONVOLUTIONS):
        frozen = [name for name in CONVOLUTIONS if name not in learning]
        return False, (
            f"BatchNorm is safe, but only {len(learning)} of the 6 convolutions can learn ({frozen[0]} stays frozen): "
            "the task is every convolution, unfreeze='all'."
        )
    problem = _course_weights_problem(answer)
    if problem:
        return False, problem
    return (
        True,
        "all 6 BatchNorm layers run in inference mode with their pretrained statistics, and all 6 convolutions can learn.",
    )


# --------------------------------------------------------------------------- quizzes

STRATEGY_PAIRS = {
    "200 labelled photos of dog breeds; ImageNet base": "freeze the base and train a linear head on its features",
    "1 million labelled product photos; ImageNet base": "fine-tune every layer from the probe, at a low learning rate",
    "300 labelled X-ray images; ImageNet base": "try earlier layers' features or fine-tune the top blocks, against a scratch baseline",
    "5 million labelled radar spectrograms; ImageNet base": "fine-tune everything at a higher rate or train from scratch, and compare",
}

exercises.define_match(
    "03.m1", question="Match each situation to the strategy to try first.", pairs=STRATEGY_PAIRS
)

exercises.define_quiz(
    "03.q1",
    question="A network reaches 0.93 training accuracy but 0.38 when evaluated on the same kind of data. "
    "It has BatchNorm layers and was trained for a few epochs. What do you check first?",
    options=[
        "Overfitting: collect more data.",
        "BatchNorm's moving statistics: compare training-mode and inference-mode accuracy, then recalibrate them.",
        "The learning rate is too low: raise it.",
        "The test set is shifted: use domain adaptation.",
    ],
    answer=1,
    explanation="A large gap between training mode and inference mode on the same data is the BatchNorm "
    "pitfall; `models.bn_report` shows it and `models.recalibrate_bn` fixes it.",
    why=[
        "Overfitting shows on *new* data; here even evaluation on similar data fails, and too suddenly.",
        "",
        "A low rate gives low training accuracy too; here training accuracy is high.",
        "Possible, but check the cheap explanation first: evaluate on the training images in both modes.",
    ],
)
