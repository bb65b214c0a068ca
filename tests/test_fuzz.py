"""Property-based fuzzing: random shapes, dtypes and objects thrown at the public API and at every checker.

The contract: a public function either works or raises a clear ``ValueError``/``TypeError``
(``FileNotFoundError``/``RuntimeError`` for files and the network) with a message — never an
``IndexError``, ``AttributeError``, ``KeyError``, ``ZeroDivisionError`` or a backend error from deep
inside Keras. Every exercise checker returns a verdict for any answer and never raises.
"""

import contextlib
import importlib
import io
import pkgutil
import re

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tltutor.checks
from tltutor import data, exercises, models, train

CLEAR_ERRORS = (ValueError, TypeError, FileNotFoundError, RuntimeError)
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

DTYPES = st.sampled_from(["uint8", "int64", "float32", "float64", "bool", "complex64", "int8"])
ARRAYS = hnp.arrays(
    dtype=DTYPES,
    shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6),
    elements={"allow_nan": True, "allow_infinity": True},
)
IMAGE_SHAPES = st.tuples(
    st.integers(0, 4),
    st.sampled_from([1, 8, 32]),
    st.sampled_from([8, 32]),
    st.sampled_from([1, 3, 4]),
)
IMAGE_LIKE = st.one_of(  # close to valid images, so the checks beyond the shape are reached too
    hnp.arrays("uint8", IMAGE_SHAPES),
    hnp.arrays("int64", IMAGE_SHAPES, elements=st.integers(-2, 300)),
    hnp.arrays("float32", IMAGE_SHAPES, elements=st.floats(-2, 300, width=32)),
    hnp.arrays("float32", IMAGE_SHAPES, elements=st.floats(width=32)),  # NaN and inf too
)
OBJECTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 300), max_size=6),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
    st.just(keras.layers.Dense(2)),
    ARRAYS,
)
ANYTHING = st.one_of(OBJECTS, ARRAYS, IMAGE_LIKE)


def calls_cleanly(function, *args, **kwargs):
    """Run ``function``; a clear error is fine, anything else fails the test."""
    try:
        return function(*args, **kwargs)
    except CLEAR_ERRORS as error:
        assert str(error).strip(), (
            f"{type(error).__name__} without a message from {function.__name__}"
        )
        return None


@pytest.fixture(scope="module")
def tiny():
    base = models.get_base("TLNet", weights=None, input_shape=(8, 8, 3))
    return base, models.build_model(base, 2)


@FUZZ
@given(
    X=ANYTHING,
    kind=st.sampled_from([*data.SHIFTS, "warp", 3]),
    severity=st.one_of(st.floats(-1, 3), OBJECTS),
)
def test_data_image_functions(X, kind, severity):
    calls_cleanly(data.to_lab, X, size=8)
    calls_cleanly(data.shift, X, kind, severity=severity)


@FUZZ
@given(X=ANYTHING, y=ANYTHING, per_class=OBJECTS, classes=OBJECTS, fraction=OBJECTS)
def test_data_label_functions(X, y, per_class, classes, fraction):
    calls_cleanly(data.sample_per_class, X, y, per_class)
    calls_cleanly(data.task_split, X, y, classes)
    calls_cleanly(data.train_test_split, X, y, test_fraction=fraction)


@FUZZ
@given(num_classes=OBJECTS, dropout=OBJECTS, unfreeze=OBJECTS, name=OBJECTS, weights=OBJECTS)
def test_model_functions(tiny, num_classes, dropout, unfreeze, name, weights):
    base, model = tiny
    calls_cleanly(models.build_model, base, num_classes, dropout=dropout)
    calls_cleanly(models.build_model, num_classes, 2)
    calls_cleanly(models.freeze, model, unfreeze=unfreeze)
    calls_cleanly(models.get_base, name, weights=None)
    if weights is not None and not isinstance(
        weights, str
    ):  # strings may name real files or the network
        calls_cleanly(models.get_base, "TLNet", weights=weights)


@FUZZ
@given(
    X=ANYTHING,
    y=ANYTHING,
    num_epochs=st.one_of(st.just(1), OBJECTS),
    lr=st.one_of(st.just(1e-3), OBJECTS),
)
def test_train_functions(tiny, X, y, num_epochs, lr):
    base, model = tiny
    calls_cleanly(train.evaluate, model, X, y)
    calls_cleanly(train.extract_features, base, X, cache_dir=False)
    calls_cleanly(train.fit, model, X, y, num_epochs=num_epochs, lr=lr, verbose=0)
    calls_cleanly(train.train_head, X, y, num_epochs=1)


def _optional_module_functions():
    """The public functions of tltutor.adapt and tltutor.metrics that take arrays first."""
    found = []
    for module_name in ("tltutor.adapt", "tltutor.metrics"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")]):
            function = getattr(module, name)
            if (
                callable(function)
                and not isinstance(function, type)
                and getattr(function, "__module__", "") == module_name
            ):
                found.append(function)
    return found


@pytest.mark.parametrize(
    "function", _optional_module_functions(), ids=lambda f: f"{f.__module__}.{f.__name__}"
)
@FUZZ
@given(a=ANYTHING, b=ANYTHING)
def test_adapt_and_metrics_functions(function, a, b):
    import inspect

    required = [
        p
        for p in inspect.signature(function).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) > 2 or any(p.name in ("base", "model") for p in required):
        pytest.skip("needs a model or more than two arrays")
    calls_cleanly(function, *[a, b][: len(required)])


def _register_all_checkers() -> list[str]:
    """Import (or re-import, after another test reset the registry) every checker module."""
    for module in pkgutil.iter_modules(tltutor.checks.__path__):
        importlib.reload(importlib.import_module(f"tltutor.checks.{module.name}"))
    return sorted(exercises._EXERCISES)


@pytest.fixture(scope="module")
def checkers():
    return _register_all_checkers()


VERDICT = re.compile(r"^\[ex [\w.-]+\] (correct|not yet|not attempted): \S")


@pytest.mark.parametrize("exercise_id", _register_all_checkers())
@FUZZ
@given(answer=ANYTHING)
def test_every_checker_returns_a_verdict(checkers, exercise_id, answer):
    assert exercise_id in checkers
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = exercises.check(exercise_id, answer, widget=False, timeout=20)
    assert result in (True, False)
    lines = out.getvalue().splitlines()
    assert lines and VERDICT.match(lines[-1]), lines
