"""`python -m tltutor demo --target DIR` on a user's folder: what is read, and every bad input refused
before any training with one line that says what to do (issue 19)."""

import json

import numpy as np
import PIL.features
import PIL.Image
import pytest

from tltutor import cli, data, demo, train


def write_folder(root, classes=("cat", "dog", "fox"), per_class=12, size=(40, 36), suffix=".png"):
    """Tiny PNGs (or another format) in root/<class>/; class k has a bright stripe at position k."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
            pixels[:, 12 * k : 12 * k + 12] += 150
            PIL.Image.fromarray(pixels).save(root / name / f"{i:02d}{suffix}")
    return root


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the demo gets as far as training."""
    monkeypatch.setattr(
        train, "compare_transfer", lambda *a, **k: pytest.fail("the demo started training")
    )


def demo_error(capsys, *args):
    """Run `demo` in-process; return (exit status, stderr)."""
    status = cli.main(["demo", *map(str, args)])
    return status, capsys.readouterr().err


# ----------------------------------------------------------------- reading the folder


def test_16_bit_pngs_are_scaled_not_clipped_to_white(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    for name in ("dark", "light"):
        (tmp_path / name).mkdir()
    PIL.Image.fromarray(ramp // 4).save(tmp_path / "dark" / "a.png")  # 16-bit, 0..16383
    PIL.Image.fromarray(ramp).save(tmp_path / "light" / "a.png")  # 16-bit, 0..65535
    assert PIL.Image.open(tmp_path / "light" / "a.png").mode.startswith("I")
    X, y, _ = data.folder_to_arrays(tmp_path, size=32, channels=1)
    expected = np.rint(ramp / 257.0)
    assert np.abs(X[1, ..., 0].astype(int) - expected).max() <= 1  # 0..255 like the original
    assert X[0].max() <= 65 and X[0].mean() < 40  # dark stays dark (clipping made it white)


@pytest.mark.parametrize("suffix", [".tif", ".webp", ".jpg", ".bmp"])
def test_other_formats_are_read(tmp_path, suffix):
    if suffix == ".webp" and not PIL.features.check("webp"):
        pytest.skip("this Pillow has no WebP support")
    root = write_folder(tmp_path / "photos", per_class=2, suffix=suffix)
    X, y, names = data.folder_to_arrays(root, size=16)
    assert (
        X.shape == (6, 16, 16, 3)
        and names == ["cat", "dog", "fox"]
        and y.tolist() == [0, 0, 1, 1, 2, 2]
    )


def test_every_unreadable_file_is_listed_by_path(tmp_path):
    root = write_folder(tmp_path / "photos", per_class=3)
    (root / "cat" / "notes.png").write_text("not an image")
    (root / "dog" / "cut.jpg").write_bytes((root / "dog" / "00.png").read_bytes()[:60])  # truncated
    with pytest.raises(ValueError) as error:
        data.folder_to_arrays(root)
    message = str(error.value)
    assert "could not read 2 of 11 image files" in message
    assert str(root / "cat" / "notes.png") in message and str(root / "dog" / "cut.jpg") in message
    assert "BytesIO" not in message and "0x" not in message


def test_a_split_folder_is_refused_with_a_hint_by_the_readers(tmp_path):
    for split in ("train", "val"):
        write_folder(tmp_path / "photos" / split, per_class=2)
    with pytest.raises(ValueError, match="split folders.*train/.*val/.*read one split at a time"):
        data.folder_to_arrays(tmp_path / "photos")


def test_load_image_folder_names_the_files_keras_cannot_stream(tmp_path):
    root = write_folder(tmp_path / "photos", per_class=2, suffix=".tif")
    with pytest.raises(ValueError, match=r"\.tif.*folder_to_arrays"):
        data.load_image_folder(root, image_size=(16, 16))


# ----------------------------------------------------------------- planning the target


def test_a_train_val_split_is_used_as_train_and_test(tmp_path):
    write_folder(tmp_path / "photos" / "train", per_class=10)
    write_folder(tmp_path / "photos" / "val", per_class=4)
    plan = demo.plan_folder(tmp_path / "photos", sizes=[5, 10])
    assert plan.names == ["cat", "dog", "fox"] and plan.counts() == ([10, 10, 10], [4, 4, 4])
    X_train, y_train, X_test, y_test = demo.read_folder(plan, image_size=16)
    assert X_train.shape == (30, 16, 16, 3) and np.bincount(y_test).tolist() == [4, 4, 4]


def test_a_half_split_is_refused(tmp_path):
    write_folder(tmp_path / "photos" / "train", per_class=4)
    with pytest.raises(ValueError, match="needs both a train/ folder and a val/"):
        demo.plan_folder(tmp_path / "photos", sizes=[2])


def test_split_halves_with_different_classes_are_refused(tmp_path):
    write_folder(tmp_path / "photos" / "train", classes=("cat", "dog"), per_class=4)
    write_folder(tmp_path / "photos" / "val", classes=("cat", "cow"), per_class=4)
    with pytest.raises(ValueError, match=r"only in train/: \['dog'\], only in val/: \['cow'\]"):
        demo.plan_folder(tmp_path / "photos", sizes=[2])


def test_sizes_are_checked_against_the_smallest_class_before_reading(tmp_path):
    root = write_folder(tmp_path / "photos", per_class=12)
    for extra in range(12, 30):  # cat and fox have more; dog is the smallest class
        for name in ("cat", "fox"):
            PIL.Image.new("RGB", (8, 8)).save(root / name / f"{extra}.png")
    with pytest.raises(ValueError) as error:
        demo.plan_folder(root, sizes=[5, 10, 100])
    assert str(error.value) == (
        f"--sizes 10 100 asks for more labels per class than the folder has: class 'dog' has 12 images in {root}, "
        "8 to train after 4 (30%) go to the test set; use --sizes up to 8, e.g. --sizes 5"
    )


# ----------------------------------------------------------------- the verdict


def test_verdict_says_when_transfer_hurt_and_what_to_try():
    results = {
        "scratch": {5: 0.50, 20: 0.80},
        "features": {5: 0.45, 20: 0.60},
        "finetune": {5: 0.52, 20: 0.65},
    }
    lines = demo.verdict(results, test_per_class=[300] * 5, source="Fashion-MNIST garments")
    assert lines[1].startswith(
        "Transfer hurt here: training from scratch beat the best transfer strategy (fine-tuning) by 15 points"
    )
    assert "--arch MobileNetV2 --weights imagenet" in lines[1]
    imagenet = demo.verdict(
        results, test_per_class=[300] * 5, source="ImageNet's photos", imagenet=True
    )
    assert "--weights imagenet" not in imagenet[1] and "another ImageNet backbone" in imagenet[1]


def test_verdict_on_a_small_test_set_gives_the_uncertainty_and_no_winner():
    results = {"scratch": {5: 0.70}, "features": {5: 0.80}, "finetune": {5: 0.75}}
    lines = demo.verdict(results, test_per_class=[4, 4, 5])
    assert lines[0].startswith("Test set: 4-5 images per class (13 in all): an accuracy near 0.75")
    assert "±0.24 (95% interval)" in lines[0] and "too few test images" in lines[0]
    assert lines[1].startswith("No strategy is clearly better with 5 labels per class")


def test_verdict_prefers_the_cheaper_strategy_when_finetuning_is_within_the_noise():
    results = {"scratch": {100: 0.60}, "features": {100: 0.80}, "finetune": {100: 0.81}}
    lines = demo.verdict(results, test_per_class=[300] * 5)
    assert lines[1].startswith(
        "Use feature extraction: with 100 labels per class it beat training from scratch by 20 points"
    )


def test_verdict_says_1_point_not_1_points():
    results = {"scratch": {100: 0.80}, "features": {100: 0.79}, "finetune": {100: 0.81}}
    lines = demo.verdict(results, test_per_class=[300] * 5)
    assert "differ by 1 point (0.79 vs 0.80)" in lines[1]


def test_accuracy_margin_is_the_binomial_95_percent_interval():
    assert demo.accuracy_margin(0.5, 100) == pytest.approx(1.96 * 0.05)
    assert demo.accuracy_margin(1.0, 10) > 0.1  # a perfect score on 10 images is not exact


# ----------------------------------------------------------------- bad input -> one line, before any work


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--sizes", "0"],
            "--sizes must be positive numbers of labels per class, e.g. --sizes 5 20 100; got 0",
        ),
        (["--arch", "VGG99"], "unknown --arch 'VGG99'; choose one of TLNet, MobileNetV3Small"),
        (
            ["--arch", "TLNet", "--weights", "imagenet"],
            "--arch TLNet is the course's own backbone and has no ImageNet weights",
        ),
        (["--weights", "missing.weights.h5"], "--weights missing.weights.h5: no such file"),
        (
            ["--arch", "MobileNetV2", "--image-size", "16"],
            "--image-size must be a number of pixels from 32 to 1024 for MobileNetV2",
        ),
        (["--num-epochs", "0"], "--num-epochs must be an integer >= 1"),
        (
            ["--sizes", "5", "2000"],
            "--sizes 2000 asks for more labels per class than the course's target task has "
            "(1000 training images per class); use --sizes up to 1000",
        ),
    ],
)
def test_bad_arguments_are_refused_in_one_line(args, message, capsys, no_training):
    status, err = demo_error(capsys, *args)
    assert status == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_a_file_as_out_or_target_is_refused(tmp_path, capsys, no_training):
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me")
    status, err = demo_error(capsys, "--out", a_file)
    assert (
        status == 2
        and err
        == f"error: --out {a_file} is a file; give a folder (the plot and demo_results.json are written into it)\n"
    )
    assert a_file.read_text() == "keep me"
    status, err = demo_error(capsys, "--target", a_file)
    assert (
        status == 2
        and err
        == f"error: --target {a_file} is a file; give a folder with one subfolder of images per class\n"
    )


def test_too_many_labels_per_class_is_refused_before_training(tmp_path, capsys, no_training):
    root = write_folder(tmp_path / "photos", per_class=12)
    status, err = demo_error(capsys, "--target", root, "--sizes", "5", "100")
    assert (
        status == 2
        and "--sizes 100 asks for more labels per class than the folder has: class 'cat' has 12 images"
        in err
    )


def test_unreadable_files_are_all_listed_before_training(tmp_path, capsys, no_training):
    root = write_folder(tmp_path / "photos", per_class=12)
    for name in ("cat", "fox"):
        (root / name / "broken.png").write_bytes(b"\x89PNG not really")
    status, err = demo_error(capsys, "--target", root, "--sizes", "2")
    assert status == 2 and "could not read 2 of 38 image files" in err
    assert str(root / "cat" / "broken.png") in err and str(root / "fox" / "broken.png") in err


def test_ctrl_c_keeps_the_finished_results(tmp_path, capsys, monkeypatch):
    def interrupted_after_one_model(*args, progress, **kwargs):
        progress("scratch", 2, None, 0.0)
        progress("scratch", 2, 0.5, 1.0)
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "compare_transfer", interrupted_after_one_model)
    root = write_folder(tmp_path / "photos", per_class=6)
    status = cli.main(
        ["demo", "--target", str(root), "--sizes", "2", "--out", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    partial = tmp_path / "out" / "demo_results.partial.json"
    assert status == 130
    assert (
        err.strip()
        == f"interrupted (Ctrl-C): 1 of 3 models had finished; their accuracies are in {partial}"
    )
    assert json.loads(partial.read_text()) == {"scratch 2": 0.5}
