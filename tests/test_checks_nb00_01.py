"""Checkers of notebooks 00 and 01: right answers pass, each wrong answer gets its explanation,
hostile answers get a verdict and never raise."""

import importlib

import numpy as np
import pytest

from tltutor import data, exercises
from tltutor.checks import nb00, nb01

TARGET_NAMES = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(autouse=True, scope="module")
def registered():
    """Register the checkers again: other test files call exercises.reset()."""
    importlib.reload(nb00)
    importlib.reload(nb01)


def verdict(exercise_id, answer, capsys):
    ok = exercises.check(exercise_id, answer, widget=False, timeout=10.0)
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"[ex {exercise_id}] "), line
    assert "\n" not in line
    return ok, line


class Boom:
    """An answer whose every use raises."""

    def __eq__(self, other):
        raise RuntimeError("boom")

    def __len__(self):
        raise RuntimeError("boom")

    def __iter__(self):
        raise RuntimeError("boom")


HOSTILE = [
    "Sandal", 42, 3.5, float("nan"), b"bytes", {1, 2}, object(), Boom(), np.zeros((3, 3)),
    [None] * 5, [[1]], lambda: None, {"a": 1}, (), [],
]


# ------------------------------------------------------------------ 00.1


def test_00_1_right_answer_passes_also_as_tuple_or_array(capsys):
    for answer in (TARGET_NAMES, tuple(TARGET_NAMES), np.array(TARGET_NAMES)):
        ok, line = verdict("00.1", answer, capsys)
        assert ok and "correct" in line
    assert TARGET_NAMES == [data.FASHION_CLASSES[c] for c in data.TARGET_CLASSES]


@pytest.mark.parametrize(
    "answer, words",
    [
        (["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"], "source"),
        (list(data.TARGET_CLASSES), "class numbers"),
        (TARGET_NAMES[::-1], "wrong order"),
        (TARGET_NAMES[:4], "5 classes"),
        (["Sandal"] * 5, "more than once"),
        (["Sandal", "Shirt", "Sneaker", "Bag", "Boot"], "'Boot'"),
        ("Sandal, Shirt", "list of 5"),
        ([1, "Shirt", 2, 3, 4], "string"),
    ],
)
def test_00_1_wrong_answers_are_explained(answer, words, capsys):
    ok, line = verdict("00.1", answer, capsys)
    assert not ok and "not yet" in line and words in line, line


# ------------------------------------------------------------------ 00.2


def test_00_2_right_answer_passes(capsys):
    _, y_train, _, _ = data.lab_target()
    ok, line = verdict("00.2", np.bincount(y_train), capsys)
    assert ok, line
    assert verdict("00.2", np.bincount(y_train).astype(float), capsys)[0]
    assert verdict("00.2", list(np.bincount(y_train)), capsys)[0]


@pytest.mark.parametrize(
    "answer, words",
    [
        ([300] * 5, "test"),
        ([1000] * 10, "original Fashion-MNIST labels"),
        (5000, "one number"),
        ([[1000] * 5], "1-D"),
        ([1000] * 4, "5 classes"),
        ([1000, 1000, 1000, 1000, 999], "expected [1000, 1000, 1000, 1000, 1000]"),
        (["a"] * 5, "text"),
        ([1.0, float("nan"), 1.0, 1.0, 1.0], "NaN"),
    ],
)
def test_00_2_wrong_answers_are_explained(answer, words, capsys):
    ok, line = verdict("00.2", answer, capsys)
    assert not ok and words in line, line


def test_00_2_expected_counts_match_lab_target():
    _, y_train, _, y_test = data.lab_target()
    assert nb00.expected_counts("train") == tuple(np.bincount(y_train).tolist())
    assert nb00.expected_counts("test") == tuple(np.bincount(y_test).tolist())


# ------------------------------------------------------------------ 01.1

RIGHT_CHANGES = {"A": "P(X)", "B": "Y", "C": "f", "D": "X"}


def test_01_1_right_answer_passes_with_spelling_variants(capsys):
    assert verdict("01.1", RIGHT_CHANGES, capsys)[0]
    assert verdict("01.1", {"A": "p(x)", "B": "y", "C": "P(Y|X)", "D": " x "}, capsys)[0]


@pytest.mark.parametrize(
    "answer, words",
    [
        ({**RIGHT_CHANGES, "A": "X"}, "3 of 4 right. A: not X"),
        ({**RIGHT_CHANGES, "B": "f", "C": "Y"}, "2 of 4 right"),
        ({"A": "P(X)", "B": "Y"}, "C, D are missing"),
        ({**RIGHT_CHANGES, "E": "X"}, "unknown scenario"),
        ({**RIGHT_CHANGES, 1: "X"}, "unknown scenario"),
        ({**RIGHT_CHANGES, "A": "domain"}, "look at A"),
        ({**RIGHT_CHANGES, "A": 3}, "look at A"),
        (["P(X)", "Y", "f", "X"], "expected a dict"),
    ],
)
def test_01_1_wrong_answers_are_explained(answer, words, capsys):
    ok, line = verdict("01.1", answer, capsys)
    assert not ok and words in line, line


def test_01_1_wrong_scenario_gets_its_hint_not_the_answer(capsys):
    ok, line = verdict("01.1", {**RIGHT_CHANGES, "D": "P(X)"}, capsys)
    assert not ok and "English" in line and "changes X" not in line


# ------------------------------------------------------------------ 01.3


def reference(results, n):
    return max(results[s][n] for s in results if s != "scratch") - results["scratch"][n]


def test_01_3_right_answers_pass(capsys):
    assert verdict("01.3", reference, capsys)[0]
    assert verdict("01.3", nb01.reference_transfer_gain, capsys)[0]
    assert nb01.reference_transfer_gain({"scratch": {5: 0.3}, "features": {5: 0.5}, "finetune": {5: 0.6}}, 5) == 0.3


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda r, n: 100 * reference(r, n), "percentage points"),
        (lambda r, n: -reference(r, n), "sign is flipped"),
        (lambda r, n: r["finetune"][n] - r["scratch"][n], "feature extraction is the better"),
        (lambda r, n: abs(reference(r, n)), "negative transfer"),
        (lambda r, n: max(0.0, reference(r, n)), "negative transfer"),
        (lambda r, n: max(r["features"][n], r["finetune"][n]) - r["scratch"][n], "'finetune' key"),
        (lambda r, n: r.pop("scratch")[n], "changed the results"),
        (lambda r, n: str(reference(r, n)), "returned a str"),
        (lambda r, n: float("nan"), "NaN"),
        (lambda r, n: [reference(r, n)], "returned a list"),
        (lambda r, n: 0.5, "expected 0.25"),
        (lambda r: 0.25, "TypeError"),
        (lambda r, n: 1 / 0, "ZeroDivisionError"),
        (3, "expected a function"),
        ("reference", "expected a function"),
    ],
)
def test_01_3_wrong_answers_are_explained(answer, words, capsys):
    ok, line = verdict("01.3", answer, capsys)
    assert not ok and words in line, line


def test_01_3_endless_loop_times_out(capsys):
    def forever(results, n):
        while True:
            pass

    ok, line = verdict("01.3", forever, capsys)
    assert not ok and "longer than" in line, line


# ------------------------------------------------------------------ hostile answers, quizzes


@pytest.mark.parametrize("exercise_id", ["00.1", "00.2", "01.1", "01.3"])
@pytest.mark.parametrize("answer", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_answers_get_a_verdict(exercise_id, answer, capsys):
    ok, line = verdict(exercise_id, answer, capsys)
    assert not ok and ("not yet" in line or "not attempted" in line), line


@pytest.mark.parametrize("exercise_id", ["00.1", "00.2", "01.1", "01.3"])
def test_none_is_not_attempted(exercise_id, capsys):
    ok, line = verdict(exercise_id, None, capsys)
    assert not ok and "not attempted" in line


def test_glossary_quiz_is_well_formed(capsys):
    assert exercises.match("01.5", nb01.GLOSSARY, choices=dict(nb01.GLOSSARY), widget=False)
    assert "all 8 terms" in capsys.readouterr().out
    swapped = dict(nb01.GLOSSARY)
    swapped["fine-tuning"], swapped["feature extraction"] = swapped["feature extraction"], swapped["fine-tuning"]
    assert not exercises.match("01.5", nb01.GLOSSARY, choices=swapped, widget=False)
    assert "6 of 8" in capsys.readouterr().out


def test_registered_exercises_have_names_and_hints():
    for exercise_id in ("00.1", "00.2", "01.1", "01.3"):
        ex = exercises._EXERCISES[exercise_id]
        assert ex.name and ex.name.isidentifier() and ex.hints
