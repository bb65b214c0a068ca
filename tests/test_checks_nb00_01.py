"""Checkers of notebooks 00 and 01: right answers pass, each wrong answer gets its explanation,
hostile answers get a verdict and never raise."""

import importlib

import numpy as np
import pytest

from tltutor import data, exercises
from tltutor.checks import nb00, nb01


@pytest.fixture(autouse=True, scope="module")
def registered():
    """Register the checkers again: other test files call exercises.reset()."""
    importlib.reload(nb00)
    importlib.reload(nb01)
    nb00.shift_statistics()  # measured once here, outside the checks' time limit


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
    "Sandal",
    42,
    3.5,
    float("nan"),
    b"bytes",
    {1, 2},
    object(),
    Boom(),
    np.zeros((3, 3)),
    [None] * 5,
    [[1]],
    lambda: None,
    {"a": 1},
    (),
    [],
]


# ------------------------------------------------------------------ 00.1 and 00.2: predictions


def test_00_1_right_prediction_passes_as_set_list_or_tuple(capsys):
    for answer in ({"blur", "rotate"}, ["rotate", "blur"], ("Blur", " rotate")):
        ok, line = verdict("00.1", answer, capsys)
        assert ok and "correct" in line, line


@pytest.mark.parametrize(
    "answer, words",
    [
        ({"rotate"}, "1 more shift(s)"),
        ({"blur"}, "1 more shift(s)"),
        ({"blur", "rotate", "noise"}, "noise moves the mean by +10"),
        ({"contrast"}, "contrast moves the mean by +50"),
        ({"blur", "rotate", "clean"}, "'clean' is the reference"),
        (set(data.SHIFTS), "invert moves the mean"),
        (set(), "empty set"),
        ({"blurry"}, "unknown shift"),
        ("blur", "1 more shift(s)"),
        ([1, 2], "a string"),
    ],
)
def test_00_1_wrong_predictions_are_not_yet(answer, words, capsys):
    ok, line = verdict("00.1", answer, capsys)
    assert not ok and "not yet" in line and words in line, line


def test_00_1_truth_is_measured_and_holds_for_seeds_0_to_2():
    for seed in (0, 1, 2):
        stats = nb00.shift_statistics(seed)
        unchanged = {
            k for k in data.SHIFTS if abs(stats[k][0] - stats["clean"][0]) < nb00.MEAN_TOLERANCE
        }
        assert unchanged == {"blur", "rotate"}, (seed, stats)
        assert min(data.SHIFTS, key=lambda k: stats[k][1]) == "contrast", (seed, stats)


def test_00_2_right_prediction_passes(capsys):
    for answer in ("contrast", " Contrast "):
        ok, line = verdict("00.2", answer, capsys)
        assert ok and "84 to 25" in line, line


@pytest.mark.parametrize(
    "answer, words",
    [
        ("blur", "from 84 to 70"),
        ("noise", "from 84 to 81"),
        ("rotate", "from 84 to 81"),
        ("backgrounds", "from 84 to 71"),
        ("invert", "from 84 to 84"),
        ("clean", "not a shift"),
        (["contrast"], "one shift name"),
        (0.3, "one shift name"),
    ],
)
def test_00_2_wrong_predictions_are_not_yet(answer, words, capsys):
    ok, line = verdict("00.2", answer, capsys)
    assert not ok and "not yet" in line and words in line, line


def test_00_quizzes_are_defined_in_the_checker_module(capsys):
    assert exercises.quiz("00.q1", choice=1, widget=False)
    assert not exercises.quiz("00.q1", choice=2, widget=False)
    assert "os._exit" in capsys.readouterr().out
    assert exercises.quiz("00.q2", choice=2, widget=False)
    assert not exercises.quiz("00.q2", choice=0, widget=False)
    assert "do not make two distributions equal" in capsys.readouterr().out


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
    assert (
        nb01.reference_transfer_gain(
            {"scratch": {5: 0.3}, "features": {5: 0.5}, "finetune": {5: 0.6}}, 5
        )
        == 0.3
    )


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
    assert exercises.match("01.5", choices=dict(nb01.GLOSSARY), widget=False)
    assert "all 8 terms" in capsys.readouterr().out
    swapped = dict(nb01.GLOSSARY)
    swapped["fine-tuning"], swapped["feature extraction"] = (
        swapped["feature extraction"],
        swapped["fine-tuning"],
    )
    assert not exercises.match("01.5", choices=swapped, widget=False)
    assert "6 of 8" in capsys.readouterr().out


def test_01_quizzes_are_defined_in_the_checker_module(capsys):
    assert exercises.quiz("01.2", choice=0, widget=False)
    assert not exercises.quiz("01.2", choice=2, widget=False)
    assert exercises.quiz("01.4", choice=0, widget=False)
    for wrong in (1, 2):
        assert not exercises.quiz("01.4", choice=wrong, widget=False)


def test_registered_exercises_have_names_and_hints():
    for exercise_id in ("00.1", "00.2", "01.1", "01.3"):
        ex = exercises._EXERCISES[exercise_id]
        assert ex.name and ex.name.isidentifier() and ex.hints
