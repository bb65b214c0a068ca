"""Backbones, heads, freezing, BatchNorm diagnostics and the course's source checkpoints.

Every base takes raw pixels in [0, 255] with shape (N, H, W, 3) and does its own
preprocessing inside, so callers never preprocess; it outputs a pooled feature
vector (N, D). A typical transfer model:

>>> base = get_base("TLNet", weights=None)
>>> model = build_model(base, num_classes=5)
>>> model = freeze(model)                      # feature extraction: only the head learns
>>> trainable_summary(model)["trainable_layers"]
['head']
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import tempfile

import keras
import numpy as np
from keras import layers

from tltutor.validation import (
    check_backbone,
    check_batch_size,
    check_images,
    check_input_shape,
    check_momentum,
    host_reachable,
    sha256,
)

BACKBONES: tuple[str, ...] = (
    "TLNet",
    "MobileNetV3Small",
    "MobileNetV2",
    "EfficientNetB0",
    "ResNet50",
)

WEIGHTS_HOST = "storage.googleapis.com"  # where keras.applications downloads ImageNet weights from

# ImageNet file names (include_top=False) that keras.applications stores in ~/.keras/models/.
_IMAGENET_FILES = {
    "MobileNetV3Small": "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    "MobileNetV2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5",
    "EfficientNetB0": "efficientnetb0_notop.h5",
    "ResNet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}


# --------------------------------------------------------------------------- backbones


def tlnet(
    input_shape=(32, 32, 3), *, width: int = 16, bn_momentum: float = 0.9, name: str = "tlnet"
) -> keras.Model:
    """The course's own small backbone: 3 blocks of Conv-BN-ReLU x2 + MaxPool, then global average pooling.

    Widths are ``width``, ``2 * width`` and ``4 * width``, so the features have ``4 * width``
    dimensions. Layers are named by block (``block1_conv1``, ``block1_bn1``, ``block1_relu1``, ...,
    ``block3_pool``) so that ``freeze(base, unfreeze="block3")`` can address them. BatchNorm uses
    ``momentum=0.9`` (not Keras' 0.99) so that its moving statistics keep up at lab scale.
    The default ``width=16`` trains at about 1,900 images/s at 32x32, batch 128, on 2 CPU cores
    (width 32: about 650 images/s).

    >>> base = tlnet(width=8)
    >>> base.output_shape
    (None, 32)
    >>> [layer.name for layer in base.layers[2:5]]
    ['block1_conv1', 'block1_bn1', 'block1_relu1']
    """
    input_shape = check_input_shape(input_shape, min_size=8)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(
            f"width must be a positive int (channels of the first block); got {width!r}"
        )
    check_momentum(bn_momentum)
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    for block, filters in enumerate((width, 2 * width, 4 * width), start=1):
        for i in (1, 2):
            x = layers.Conv2D(
                filters, 3, padding="same", use_bias=False, name=f"block{block}_conv{i}"
            )(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"block{block}_bn{i}")(x)
            x = layers.ReLU(name=f"block{block}_relu{i}")(x)
        x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, features, name=name)


@keras.saving.register_keras_serializable(package="tltutor")
class CaffePreprocessing(layers.Layer):
    """ResNet50's ``preprocess_input`` as a layer (RGB to BGR, minus the ImageNet mean).

    A layer rather than a ``Lambda`` so that a saved ``.keras`` model loads without ``safe_mode=False``.

    >>> x = CaffePreprocessing()(np.full((1, 1, 1, 3), 128.0))   # RGB (128, 128, 128)
    >>> keras.ops.convert_to_numpy(x).astype(float).round(1).ravel().tolist()
    [24.1, 11.2, 4.3]
    """

    def call(self, x):
        return keras.applications.resnet50.preprocess_input(x)


def get_base(
    arch: str = "TLNet",
    *,
    weights: str | None | os.PathLike = "course",
    input_shape=(32, 32, 3),
    bn_momentum: float | None = None,
    weights_dir: str | os.PathLike | None = None,
    source: str = "backgrounds",
) -> keras.Model:
    """A backbone that maps raw pixels (N, H, W, 3) in [0, 255] to pooled features (N, D).

    ``arch`` is one of ``BACKBONES`` (case-insensitive; ``name`` is only ever a Keras model's name,
    as in :func:`build_model`). ``weights`` is

    - ``"course"``: the course-pretrained source checkpoint ``<arch>_source.weights.h5`` (and its
      ``.json`` metadata) from ``weights_dir``, else ``$TLTUTOR_WEIGHTS_DIR``, else ``tltutor/_data``;
      its sha256 is checked before loading. Create it with ``python -m tltutor pretrain --arch <arch>``.
      ``source`` picks which course checkpoint: ``"backgrounds"`` (the default source) or another
      name of :data:`tltutor.data.SOURCE_DOMAINS` (the model zoo, ``<arch>_source-<source>.weights.h5``).
    - ``"imagenet"``: the ``keras.applications`` weights (downloaded once into ``~/.keras/models``);
      offline, a RuntimeError says how to get them within seconds.
    - ``None``: random initialisation.
    - a path to a ``.weights.h5`` file saved from the same base, a ``.keras`` model, or an ImageNet
      ``.h5`` file from ``keras.applications`` copied by hand.

    ``bn_momentum`` sets the momentum of every BatchNormalization layer (0.9 trains well at lab scale).

    >>> base = get_base("MobileNetV2", weights=None)
    >>> base.name, base.output_shape
    ('mobilenetv2_base', (None, 1280))
    """
    arch = _backbone(arch)
    input_shape = check_input_shape(input_shape, min_size=8 if arch == "TLNet" else 32)
    if bn_momentum is not None:
        check_momentum(bn_momentum)
    if weights is None:
        base = _build(arch, input_shape)
    elif isinstance(weights, str) and weights == "course":
        base = _load_course_weights(arch, input_shape, weights_dir, source)
    elif isinstance(weights, str) and weights == "imagenet":
        base = _build_imagenet(arch, input_shape)
    elif isinstance(weights, (str, os.PathLike)):
        base = _load_weights_path(arch, input_shape, pathlib.Path(weights))
    else:
        raise TypeError(
            f"weights must be 'course', 'imagenet', None or a path to a weights file; got {type(weights).__name__}"
        )
    if bn_momentum is not None:
        for layer in _leaf_layers(base):
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = bn_momentum
    return base


def _build(arch: str, input_shape: tuple, weights: str | None = None) -> keras.Model:
    """The architecture with preprocessing inside; ``weights`` is passed on to keras.applications."""
    common = dict(input_shape=input_shape, include_top=False, pooling="avg", weights=weights)
    if arch == "TLNet":
        return (
            tlnet(input_shape)
            if weights is None
            else _weights_file_into(tlnet(input_shape), weights)
        )
    if arch == "MobileNetV3Small":  # rescales to [-1, 1] itself
        return keras.applications.MobileNetV3Small(
            include_preprocessing=True, name="mobilenetv3small_base", **common
        )
    if arch == "EfficientNetB0":  # rescales and normalises itself
        return keras.applications.EfficientNetB0(name="efficientnetb0_base", **common)
    inputs = keras.Input(input_shape, name="pixels")
    if arch == "MobileNetV2":  # mobilenet_v2.preprocess_input: x / 127.5 - 1
        x = layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(inputs)
        application = keras.applications.MobileNetV2(**common)
    else:  # ResNet50: caffe preprocessing (BGR, minus the ImageNet mean)
        x = CaffePreprocessing(name="preprocess")(inputs)
        application = keras.applications.ResNet50(**common)
    return keras.Model(inputs, application(x), name=f"{arch.lower()}_base")


def _build_imagenet(arch: str, input_shape: tuple) -> keras.Model:
    if arch == "TLNet":
        raise ValueError(
            "TLNet is the course's own backbone and has no ImageNet weights: use weights='course' "
            "(course-pretrained) or weights=None, or pick one of "
            f"{', '.join(b for b in BACKBONES if b != 'TLNet')} for ImageNet weights."
        )
    rows = (
        input_shape[0]
        if input_shape[0] == input_shape[1] and input_shape[0] in (96, 128, 160, 192, 224)
        else 224
    )
    file_name = _IMAGENET_FILES[arch].format(rows=rows)
    cached = _keras_cached_file(file_name)
    if cached is None and not _weights_host_reachable():
        raise RuntimeError(
            _imagenet_help(arch, file_name, f"{WEIGHTS_HOST} cannot be reached (offline?)", rows)
        )
    if cached is not None:
        return _build(arch, input_shape, weights=str(cached))
    try:
        return _build(arch, input_shape, weights="imagenet")
    except Exception as error:  # keras raises a bare Exception on download failures
        raise RuntimeError(
            _imagenet_help(arch, file_name, f"the download failed: {error}", rows)
        ) from error


def _imagenet_help(arch: str, file_name: str, reason: str, rows: int = 224) -> str:
    return (
        f"ImageNet weights for {arch} are not in ~/.keras/models/ and {reason}. To use them: on a machine "
        f'with internet run `python -c "import keras; keras.applications.{arch}('
        f'include_top=False, input_shape=({rows}, {rows}, 3))"`, '
        f"copy ~/.keras/models/{file_name} into ~/.keras/models/ here, or pass weights='/path/to/{file_name}'. "
        "Offline, weights='course' (the course-pretrained lab checkpoint) or weights=None work."
    )


def _keras_cached_file(file_name: str) -> pathlib.Path | None:
    """The file in Keras' download cache (``$KERAS_HOME``, ``~/.keras`` or ``/tmp/.keras``), if there."""
    homes = [
        os.environ.get("KERAS_HOME"),
        os.path.expanduser("~/.keras"),
        os.path.join(tempfile.gettempdir(), ".keras"),
    ]
    for home in filter(None, homes):
        path = pathlib.Path(home) / "models" / file_name
        if path.is_file():
            return path
    return None


def _weights_host_reachable(timeout: float = 3.0) -> bool:
    """Whether the keras.applications weights host answers on port 443 within ``timeout`` seconds."""
    return host_reachable(WEIGHTS_HOST, timeout=timeout)


def _load_weights_path(arch: str, input_shape: tuple, path: pathlib.Path) -> keras.Model:
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist; weights must be 'course', 'imagenet', None "
            "or the path to a .weights.h5 / .keras / keras.applications .h5 file"
        )
    if path.name.endswith(".keras"):
        base = keras.saving.load_model(path, safe_mode=True)  # never runs code stored in the file
        if not isinstance(base, keras.Model) or base.input_shape[1:] != input_shape:
            raise ValueError(
                f"{path} holds a model with input shape {getattr(base, 'input_shape', '?')}, but "
                f"input_shape={input_shape} was asked; pass input_shape={getattr(base, 'input_shape', (None,))[1:]}"
            )
        return base
    if path.name.endswith(".weights.h5"):
        return _weights_file_into(_build(arch, input_shape), path)
    if (
        path.suffix == ".h5"
    ):  # an ImageNet file from keras.applications, loaded into the application
        try:
            return _build(arch, input_shape, weights=str(path))
        except (ValueError, KeyError, OSError) as error:
            raise ValueError(f"{path} does not fit {arch}: {error}") from error
    raise ValueError(f"weights file {path} must end in .weights.h5, .keras or .h5")


def _weights_file_into(base: keras.Model, path) -> keras.Model:
    try:
        base.load_weights(path)
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(
            f"the weights in {path} do not fit {base.name} ({error}); they must come from "
            "base.save_weights() of the same architecture (same name, width and bn layout)"
        ) from error
    return base


# --------------------------------------------------------------------------- course checkpoints


def _weights_dir(weights_dir) -> pathlib.Path:
    default = os.environ.get("TLTUTOR_WEIGHTS_DIR") or pathlib.Path(__file__).parent / "_data"
    return pathlib.Path(weights_dir if weights_dir is not None else default)


def _backbone(name) -> str:
    """The canonical spelling of a backbone name (one of ``BACKBONES``)."""
    return check_backbone(name, BACKBONES)


def checkpoint_paths(
    arch: str, weights_dir=None, source: str = "backgrounds"
) -> tuple[pathlib.Path, pathlib.Path]:
    """The weights file and the metadata file of the course checkpoint of ``arch`` on ``source``.

    ``weights_dir=None`` is ``$TLTUTOR_WEIGHTS_DIR`` or the package's ``_data`` folder.

    >>> [path.name for path in checkpoint_paths("TLNet", source="digits")]
    ['TLNet_source-digits.weights.h5', 'TLNet_source-digits.json']
    """
    from tltutor.data import SOURCE_DOMAINS

    if source not in SOURCE_DOMAINS:
        raise ValueError(f"unknown source domain {source!r}; choose one of {tuple(SOURCE_DOMAINS)}")
    stem = f"{arch}_source" if source == "backgrounds" else f"{arch}_source-{source}"
    folder = _weights_dir(weights_dir)
    return folder / f"{stem}.weights.h5", folder / f"{stem}.json"


def _pretrain_command(arch: str, source: str) -> str:
    return f"python -m tltutor pretrain --arch {arch}" + (
        "" if source == "backgrounds" else f" --source {source}"
    )


def source_metadata(arch: str = "TLNet", *, weights_dir=None, source: str = "backgrounds") -> dict:
    """The JSON metadata of the course-pretrained checkpoint of the backbone ``arch``.

    It holds at least ``"architecture"``, ``"input_shape"``, ``"sha256"`` (of the weights file)
    and ``"created"``, plus whatever ``pretrain`` recorded (data, epochs, accuracy, ...).

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_source(tlnet(width=4), {"architecture": "TLNet", "test_accuracy": 0.9}, out_dir=folder)
    >>> source_metadata("tlnet", weights_dir=folder)["test_accuracy"]
    0.9
    """
    arch = _backbone(arch)
    _, meta_path = checkpoint_paths(arch, weights_dir, source)
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"no course checkpoint for {arch} (source {source!r}): {meta_path} is missing. Create it with "
            f"`{_pretrain_command(arch, source)}` (or set TLTUTOR_WEIGHTS_DIR to where it is)"
        )
    try:
        metadata = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        metadata = error
    if not isinstance(metadata, dict):
        raise ValueError(
            f"{meta_path} is corrupted ({metadata}); re-run `{_pretrain_command(arch, source)}` or reinstall tltutor"
        )
    return metadata


def verify_source(arch: str = "TLNet", *, weights_dir=None, source: str = "backgrounds") -> dict:
    """Check the course checkpoint of ``arch`` against its metadata's sha256; return the metadata.

    Raises FileNotFoundError when it is missing and ValueError when it is corrupted, each saying
    how to get a good copy.

    >>> verify_source("TLNet")["architecture"]
    'TLNet'
    """
    arch = _backbone(arch)
    metadata = source_metadata(arch, weights_dir=weights_dir, source=source)
    weights_path, _ = checkpoint_paths(arch, weights_dir, source)
    fix = f"re-run `{_pretrain_command(arch, source)}` or reinstall tltutor"
    if not weights_path.is_file():
        raise FileNotFoundError(
            f"no course checkpoint for {arch}: {weights_path} is missing; {fix}"
        )
    if metadata.get("architecture") != arch:
        raise ValueError(
            f"{weights_path.with_suffix('').with_suffix('.json')} describes {metadata.get('architecture')!r}, not {arch}; {fix}"
        )
    if sha256(weights_path) != metadata.get("sha256"):
        raise ValueError(
            f"the course checkpoint {weights_path} is corrupted (its sha256 does not match the metadata); {fix}"
        )
    return metadata


def _load_course_weights(
    arch: str, input_shape: tuple, weights_dir, source: str = "backgrounds"
) -> keras.Model:
    metadata = verify_source(arch, weights_dir=weights_dir, source=source)
    weights_path, _ = checkpoint_paths(arch, weights_dir, source)
    kwargs = {"width": metadata["width"]} if arch == "TLNet" and "width" in metadata else {}
    base = tlnet(input_shape, **kwargs) if arch == "TLNet" else _build(arch, input_shape)
    return _weights_file_into(base, weights_path)


def save_source(base: keras.Model, metadata: dict, *, out_dir) -> pathlib.Path:
    """Save a pretrained base as a course checkpoint: ``<arch>_source.weights.h5`` and ``<arch>_source.json``.

    ``metadata`` must name the ``"architecture"`` (one of ``BACKBONES``); a ``"source_domain"``
    other than ``"backgrounds"`` saves ``<arch>_source-<source_domain>.*`` instead. ``"input_shape"``,
    ``"sha256"`` of the weights file, ``"created"`` (UTC) and ``"keras_version"`` are added (and
    ``"width"`` for TLNet). Both
    files are written atomically. Returns the path of the weights file.

    >>> import tempfile
    >>> path = save_source(tlnet(width=4), {"architecture": "TLNet", "width": 4}, out_dir=tempfile.mkdtemp())
    >>> path.name
    'TLNet_source.weights.h5'
    """
    if not isinstance(base, keras.Model):
        raise TypeError(f"base must be a keras.Model; got {type(base).__name__}")
    if not isinstance(metadata, dict) or "architecture" not in metadata:
        raise ValueError(
            f"metadata must be a dict with an 'architecture' key (one of {BACKBONES}); got {metadata!r}"
        )
    arch = _backbone(metadata["architecture"])
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path, meta_path = checkpoint_paths(
        arch, out_dir, metadata.get("source_domain", "backgrounds")
    )
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{arch}_source.", suffix=".weights.h5")
    os.close(fd)
    try:
        base.save_weights(tmp)
        if arch == "TLNet":  # so that get_base rebuilds the same width even if the default changes
            metadata = {"width": base.get_layer("block1_conv1").filters, **metadata}
        metadata = {
            **metadata,
            "architecture": arch,
            "input_shape": list(base.input_shape[1:]),
            "sha256": sha256(tmp),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "keras_version": keras.__version__,
        }
        text = json.dumps(metadata, indent=2, default=_json_default)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; a checkpoint is for everyone to read
        os.replace(tmp, weights_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _atomic_write_text(meta_path, text + "\n")
    return weights_path


def _json_default(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(
        f"metadata value {value!r} of type {type(value).__name__} is not JSON serialisable"
    )


def _atomic_write_text(path: pathlib.Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --------------------------------------------------------------------------- heads and freezing


def build_model(
    base: keras.Model, num_classes: int, *, dropout: float = 0.2, name: str = "transfer_model"
) -> keras.Model:
    """Put a new softmax head on ``base``: pixels -> base -> Dropout -> Dense(num_classes, name="head").

    The base is called with ``training=False``, so its BatchNorm layers always run in inference
    mode inside this model, even after ``freeze(model, unfreeze=...)`` makes them trainable again
    (the rule of the Keras transfer-learning guide). A consequence: to *pretrain* a base from
    scratch with working BatchNorm, put a head on it without this function (as ``pretrain`` does).

    >>> model = build_model(get_base("TLNet", weights=None), num_classes=3)
    >>> model.output_shape
    (None, 3)
    """
    if not isinstance(base, keras.Model):
        raise TypeError(
            f"base must be a keras.Model such as get_base('TLNet'); got {type(base).__name__}"
        )
    if len(base.output_shape) != 2:
        raise ValueError(
            f"base must output pooled features (N, D); its output shape is {base.output_shape} — "
            "end it with GlobalAveragePooling2D or build it with pooling='avg'"
        )
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 2
    ):
        raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")
    inputs = keras.Input(base.input_shape[1:])
    x = base(inputs, training=False)
    x = layers.Dropout(dropout, name="dropout")(x)
    # float32 head: a stable softmax also under the mixed_float16 policy (gpu.setup on a GPU)
    outputs = layers.Dense(int(num_classes), activation="softmax", name="head", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def freeze(base_or_model: keras.Model, *, unfreeze: int | str = 0) -> keras.Model:
    """Choose which layers of a base learn; returns the same object (recompile it before ``fit``).

    - ``unfreeze=0``: the whole base is frozen (feature extraction);
    - ``unfreeze=k``: only the top ``k`` layers with weights learn (BatchNorm layers are not counted);
    - ``unfreeze="all"``: every layer learns;
    - ``unfreeze="block3"`` (a layer-name prefix): the first layer with that prefix and everything after it.

    BatchNormalization layers always stay frozen. A frozen BN layer runs in inference mode and
    keeps its pretrained moving statistics: small fine-tuning batches give noisy batch statistics,
    and moving statistics that chase fast-changing weights lag behind them (the course's measured
    pitfall: 0.93 training vs 0.38 evaluation accuracy). To adapt BN statistics to new data on
    purpose, use ``recalibrate_bn`` (AdaBN). Given a model from ``build_model``, it acts on the
    base inside and keeps the head trainable.

    >>> model = build_model(get_base("TLNet", weights=None), num_classes=3)
    >>> trainable_summary(freeze(model, unfreeze=2))["trainable_layers"]
    ['block3_conv1', 'block3_conv2', 'head']
    """
    if not isinstance(base_or_model, keras.Model):
        raise TypeError(
            f"freeze needs a keras.Model (a base or a model from build_model); got {type(base_or_model).__name__}"
        )
    if isinstance(unfreeze, bool) or not isinstance(unfreeze, (int, str)):
        raise TypeError(
            f"unfreeze must be an int, 'all' or a layer-name prefix such as 'block3'; got {unfreeze!r}"
        )
    if isinstance(unfreeze, int) and unfreeze < 0:
        raise ValueError(
            f"unfreeze must be >= 0 (the number of top layers to train); got {unfreeze}"
        )
    base, others = _split_base(base_or_model)
    leaves = list(_leaf_layers(base))
    if isinstance(unfreeze, str) and unfreeze != "all":
        starts = [i for i, layer in enumerate(leaves) if layer.name.startswith(unfreeze)]
        if not starts:
            prefixes = sorted({layer.name.split("_")[0] for layer in leaves if layer.weights})
            raise ValueError(
                f"no layer of {base.name} starts with {unfreeze!r}; layer-name prefixes include {prefixes[:12]}"
            )
    # One layer at a time: with the TensorFlow backend `model.trainable = True` is skipped when the
    # flag is already True, even if layers inside were frozen one by one.
    for layer in leaves:
        layer.trainable = True  # now trainable_weights shows which layers can learn
    learnable = [layer for layer in leaves if layer.trainable_weights and not _is_bn(layer)]
    if unfreeze == "all":
        chosen = learnable
    elif isinstance(unfreeze, str):
        after = {id(layer) for layer in leaves[starts[0] :]}
        chosen = [layer for layer in learnable if id(layer) in after]
    else:
        chosen = learnable[len(learnable) - unfreeze :] if unfreeze else []
    if others:
        base_or_model.trainable = True
    _set_trainable(base, {id(layer) for layer in chosen})
    for layer in others:
        layer.trainable = True
    return base_or_model


def trainable_summary(model: keras.Model) -> dict:
    """Parameter counts and the names of the layers that will learn.

    >>> summary = trainable_summary(freeze(tlnet(width=4), unfreeze=1))
    >>> summary["trainable_params"], summary["trainable_layers"]
    (2304, ['block3_conv2'])
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; got {type(model).__name__}")
    trainable_ids = {id(v) for v in model.trainable_weights}
    return {
        "trainable_params": int(sum(np.prod(v.shape) for v in model.trainable_weights)),
        "non_trainable_params": int(sum(np.prod(v.shape) for v in model.non_trainable_weights)),
        "trainable_layers": [
            layer.name
            for layer in _leaf_layers(model)
            if any(id(v) in trainable_ids for v in layer.weights)
        ],
    }


def _split_base(model: keras.Model) -> tuple[keras.Model, list]:
    """(base, head layers) for a build_model model, (model, []) for a base."""
    names = [layer.name for layer in model.layers]
    if "head" not in names:
        return model, []
    bases = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(bases) != 1:
        raise ValueError(
            f"{model.name} has a 'head' but {len(bases)} nested bases; freeze the base itself instead"
        )
    return bases[0], [layer for layer in model.layers if layer is not bases[0]]


def _set_trainable(model: keras.Model, chosen_ids: set) -> None:
    """Make exactly the layers in ``chosen_ids`` trainable, nested models included (top-down)."""
    model.trainable = any(id(layer) in chosen_ids for layer in _leaf_layers(model))
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            _set_trainable(layer, chosen_ids)
        else:
            layer.trainable = id(layer) in chosen_ids


def _leaf_layers(model):
    """Every layer inside ``model``, nested models unrolled, in graph order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _is_bn(layer) -> bool:
    return isinstance(layer, layers.BatchNormalization)


# --------------------------------------------------------------------------- BatchNorm diagnostics


def bn_report(model: keras.Model, X, *, batch_size: int = 256) -> list[dict]:
    """One row per BatchNormalization layer (nested bases included): do its moving statistics fit ``X``?

    ``mode`` is how the layer runs inside ``model(x, training=True)`` (as in ``fit``): "training"
    (batch statistics, moving statistics updated) or "inference" (moving statistics), given its
    ``trainable`` flag and any enclosing ``training=False`` call (``build_model`` makes one).
    ``mean_shift`` is the mean over channels of ``|moving_mean - mean| / sqrt(moving_var + eps)`` and
    ``var_ratio`` the mean of ``var / moving_var``, with mean and var of the layer's input over
    all of ``X``. A large ``mean_shift`` or a ``var_ratio`` far from 1 means evaluation sees
    different activations than training did: the BatchNorm pitfall (fix: ``recalibrate_bn``).

    >>> rows = bn_report(tlnet(width=4), np.zeros((8, 32, 32, 3), "uint8"))
    >>> rows[0]["layer"], rows[0]["mode"], round(rows[0]["mean_shift"], 3)
    ('block1_bn1', 'training', 0.0)
    """
    X = check_images(X, model=model)
    check_batch_size(batch_size)
    probe, bn_layers, pinned = _bn_probe(model)
    if not bn_layers:
        return []  # nothing to diagnose: the model has no BatchNormalization layer
    stats = _input_stats(*_stats_model(probe), X, batch_size=batch_size)
    rows = []
    for layer, is_pinned, (mean, var) in zip(bn_layers, pinned, stats):
        moving_mean = keras.ops.convert_to_numpy(layer.moving_mean).astype("float64")
        moving_var = keras.ops.convert_to_numpy(layer.moving_variance).astype("float64")
        rows.append(
            {
                "layer": layer.name,
                "trainable": bool(layer.trainable),
                "mode": "training" if layer.trainable and not is_pinned else "inference",
                "mean_shift": float(
                    np.mean(np.abs(moving_mean - mean) / np.sqrt(moving_var + layer.epsilon))
                ),
                "var_ratio": float(np.mean((var + layer.epsilon) / (moving_var + layer.epsilon))),
            }
        )
    return rows


def recalibrate_bn(base: keras.Model, X, *, batch_size: int = 256) -> keras.Model:
    """Re-estimate every BatchNorm layer's moving mean and variance from ``X``; returns ``base``.

    Layer by layer in graph order, each layer's statistics are computed exactly over all of ``X``
    (not as a moving average), with the layers before it already recalibrated. This fixes a base
    whose moving statistics lag behind its weights ("trains well, evaluates at chance"); with
    target-domain ``X`` it is AdaBN (Li et al. 2016), an unsupervised domain adaptation.

    >>> X = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype="uint8")
    >>> base = recalibrate_bn(tlnet(width=4), X)
    >>> max(row["mean_shift"] for row in bn_report(base, X)) < 1e-3
    True
    """
    X = check_images(X, model=base)
    check_batch_size(batch_size)
    chain = _chain(base)
    if (
        chain is not None
        and len(X) * max((size for _, size in chain), default=0) * 4 <= _CHAIN_BYTES
    ):
        _recalibrate_chain([layer for layer, _ in chain], X, batch_size)
        return base
    probe, bn_layers, _ = _bn_probe(base)
    if not bn_layers:
        return base  # no BatchNormalization layer: nothing to re-estimate
    stats_model, values_per_image = _stats_model(probe)
    for index, layer in enumerate(
        bn_layers
    ):  # one pass over X per layer: each sees the ones before it fixed
        mean, var = _input_stats(stats_model, values_per_image, X, batch_size=batch_size)[index]
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(var.astype(layer.moving_variance.dtype))
    return base


_CHAIN_BYTES = 2**29  # at most 512 MiB of one layer's outputs over all of X held in memory


def _recalibrate_chain(chain: list, X: np.ndarray, batch_size: int) -> None:
    """``recalibrate_bn`` in one pass for layers that form a chain: every batch's activations stay
    in memory, so each BatchNorm layer's statistics are set before the next layer runs (the same
    numbers as one pass over ``X`` per BatchNorm layer, several times faster)."""
    batches = [
        X[start : start + batch_size].astype("float32") for start in range(0, len(X), batch_size)
    ]
    for layer in chain:
        if _is_bn(layer):
            mean, var = _merged(_moments(batch) for batch in batches)
            layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(var.astype(layer.moving_variance.dtype))
        batches = [layer(batch, training=False) for batch in batches]


def _moments(x) -> tuple:
    """``(values per channel, mean, var)`` of one batch, per channel (channels last), in float64."""
    axes = tuple(range(len(x.shape) - 1))
    return (
        int(np.prod(x.shape[:-1])),
        np.asarray(keras.ops.mean(x, axis=axes), "float64"),
        np.asarray(keras.ops.var(x, axis=axes), "float64"),
    )


def _chain(model: keras.Model) -> list[tuple] | None:
    """``(layer, values per image of its output)`` for every layer of ``model`` (nested models
    unrolled) if each one takes the previous one's output; None for any other graph (residual
    connections, several inputs or outputs, a subclassed model, an unknown image size)."""
    graph = model if hasattr(model, "_nodes_by_depth") else getattr(model, "_functional", None)
    if graph is None:
        return None
    chain, previous = [], None
    for depth in sorted(graph._nodes_by_depth, reverse=True):  # from the input to the output
        nodes = graph._nodes_by_depth[depth]
        if len(nodes) != 1 or len(nodes[0].output_tensors) != 1:
            return None
        node = nodes[0]
        shape, inputs = node.output_tensors[0].shape[1:], list(node.input_tensors)
        if None in shape or (
            previous is not None and (len(inputs) != 1 or inputs[0] is not previous)
        ):
            return None
        if isinstance(node.operation, keras.Model):
            inner = _chain(node.operation)
            if inner is None:
                return None
            chain += inner
        elif inputs:  # not the input layer
            chain.append((node.operation, int(np.prod(shape))))
        previous = node.output_tensors[0]
    return chain


def _bn_probe(model: keras.Model):
    """A model from ``model``'s input to the input of each BN layer, the BN layers, and whether an
    enclosing call pins ``training=False`` for each."""
    graph = model if hasattr(model, "_nodes_by_depth") else getattr(model, "_functional", None)
    if graph is None:
        raise ValueError(
            f"{model.name} is a subclassed model; BatchNorm diagnostics need a functional or Sequential model"
        )
    outputs, bn_layers, pinned = [], [], []
    for layer in graph.layers:
        if not (_is_bn(layer) or isinstance(layer, keras.Model)):
            continue
        # the graph node where `layer` is called inside `graph` (Keras keeps nodes by depth)
        node = next(
            n for nodes in graph._nodes_by_depth.values() for n in nodes if n.operation is layer
        )
        if _is_bn(layer):
            outputs.append(node.input_tensors[0])
            bn_layers.append(layer)
            pinned.append(False)
            continue
        sub_probe, sub_layers, sub_pinned = _bn_probe(layer)
        if sub_layers:
            sub_outputs = sub_probe(node.input_tensors[0])
            outputs.extend(sub_outputs if isinstance(sub_outputs, (list, tuple)) else [sub_outputs])
            bn_layers.extend(sub_layers)
            call_pins = node.arguments.kwargs.get("training") is False
            pinned.extend(call_pins or p for p in sub_pinned)
    if not outputs:  # no BatchNormalization anywhere: nothing to probe
        return None, [], []
    return keras.Model(graph.input, outputs), bn_layers, pinned


def _stats_model(probe: keras.Model) -> tuple[keras.Model, list[int]]:
    """A model giving the per-channel batch mean and variance of each probe output, and how many
    values per image each of those statistics averages over."""
    inputs = keras.Input(probe.input_shape[1:])
    outputs = probe(inputs)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    stats = []
    for x in outputs:
        axes = tuple(range(len(x.shape) - 1))  # every axis but the channels (channels_last)
        stats += [keras.ops.mean(x, axis=axes), keras.ops.var(x, axis=axes)]
    return keras.Model(inputs, stats), [int(np.prod(x.shape[1:-1])) for x in outputs]


def _input_stats(
    stats_model: keras.Model, values_per_image: list[int], X: np.ndarray, *, batch_size: int
) -> list[tuple]:
    """Per-channel (mean, var) over all of ``X``, merged exactly across batches (Chan et al.'s
    parallel formula) in float64."""
    parts = [[] for _ in values_per_image]  # per probe output: (count, mean, var) of each batch
    for start in range(0, len(X), batch_size):
        batch = X[start : start + batch_size].astype("float32")
        stats = [np.asarray(s, dtype="float64") for s in stats_model.predict_on_batch(batch)]
        for i, n in enumerate(values_per_image):
            parts[i].append((len(batch) * n, stats[2 * i], stats[2 * i + 1]))
    return [_merged(p) for p in parts]


def _merged(parts) -> tuple:
    """``(mean, var)`` of a whole set from its parts' ``(count, mean, var)``, merged in order."""
    parts = iter(parts)
    total = next(parts)
    for part in parts:
        total = _merge(*total, *part)
    return total[1], total[2]


def _merge(n_a, mean_a, var_a, n_b, mean_b, var_b):
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * n_b / n
    var = (var_a * n_a + var_b * n_b + delta**2 * n_a * n_b / n) / n
    return n, mean, var
