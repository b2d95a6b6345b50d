"""Every kind of file the library reads, damaged every common way, through the command line.

File kinds: IDX (raw and gzip), image-folder trees (folder, ``.tar``, ``.tar.gz``, ``.zip``),
single images and archives for ``predict --images``, checkpoints (``.npz``), YAML configs and a
run's ``config.yaml``. Damage: empty, truncated, wrong content (another kind of file, text,
garbage, a damaged member). Each case must exit with status 2 and show exactly one line, an
``error:`` line naming the damaged file, and no traceback. An undamaged control of each kind
must succeed, so a case cannot pass because the command fails for some other reason.

The cases run through :func:`neural_networks.cli.main` (what ``python -m neural_networks``
calls) in one child process, to pay Python's start-up once; ``tests/test_cli.py`` covers the
``python -m`` entry itself. The decompression bombs of issue 12 (a 10 GB ``.tar.gz``, PNGs that
decode to gigabytes) run as their own processes, with their peak memory measured.
"""

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile
from pathlib import Path

import numpy as np
import yaml

from tests.crafted import damaged_variants, png_bomb, tar_gz_bomb
from tests.test_cli import cli, make_tree, tiny_config
from tests.test_datasets import make_idx_set

ROOT = Path(__file__).resolve().parents[1]
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
GARBAGE = bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))

# Runs each case through cli.main with stdout/stderr captured; an exception that escapes main is
# recorded as its traceback (the test then fails showing it).
RUNNER = r"""
import contextlib, io, json, sys, traceback
from neural_networks.cli import main
results = []
for argv in json.load(open(sys.argv[1])):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as exit:
            rc = exit.code
        except BaseException:
            traceback.print_exc()
            rc = "exception"
    results.append({"argv": argv, "rc": rc, "stderr": err.getvalue(), "stdout": out.getvalue()})
json.dump(results, open(sys.argv[2], "w"))
"""

PEAK_MEMORY = r"""
import sys
from neural_networks.cli import main
from neural_networks.experiments import peak_memory_mb
try:
    rc = main(sys.argv[1:])
finally:
    print(f"peak_rss_mb={peak_memory_mb()}", file=sys.stderr)
sys.exit(rc)
"""


def shown_lines(stderr: str) -> list[str]:
    """The non-blank lines a terminal shows after ``stderr`` is written to it: tqdm's bars redraw
    with carriage returns, move between nested bars with cursor-up escapes and erase themselves
    (``leave=False``), so what remains is what a user reads."""
    screen, row, col = [[]], 0, 0
    for token in re.findall(r"\x1b\[\d*[A-Za-z]|[\r\n]|[^\r\n\x1b]+|\x1b", stderr):
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            if row == len(screen):
                screen.append([])
        elif token.startswith("\x1b["):
            if token.endswith("A"):  # cursor up
                row = max(row - int(token[2:-1] or 1), 0)
        elif token != "\x1b":
            line = screen[row]
            line.extend(" " * (col + len(token) - len(line)))
            line[col : col + len(token)] = token
            col += len(token)
    return [text for text in ("".join(line).strip() for line in screen) if text]


def tar_of(tree: Path, target: Path, mode: str) -> Path:
    with tarfile.open(target, mode) as tf:
        tf.add(tree, arcname=tree.name)
    return target


def zip_of(tree: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for file in sorted(tree.rglob("*")):
            if file.is_file():
                zf.write(file, Path(tree.name, file.relative_to(tree)).as_posix())
    return target


class TestDamagedFilesThroughTheCLI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        cls.cases = []  # (kind, label, argv, damaged path or None for a control)
        make_tree(cls.dir / "shapes", {"train": 16, "test": 4})
        cls.config = cls.dir / "tiny.yaml"
        cls.config.write_text(yaml.safe_dump(tiny_config(cls.dir / "shapes", epochs=1)))
        cli("train", cls.config, "--out", cls.dir / "runs", "--quiet", cwd=cls.dir)
        cls.run_dir = cls.dir / "runs" / "tiny"
        cls._idx_cases()
        cls._image_folder_cases()
        cls._predict_cases()
        cls._checkpoint_cases()
        cls._config_cases()
        cls._metrics_cases()
        argv_file, results_file = cls.dir / "cases.json", cls.dir / "results.json"
        argv_file.write_text(json.dumps([[str(a) for a in argv] for _, _, argv, _ in cls.cases]))
        env = {**os.environ, "NEURAL_NETWORKS_DATA": str(cls.dir / "cache")}
        subprocess.run(
            [sys.executable, "-c", RUNNER, argv_file, results_file], cwd=cls.dir, env=env, check=True, timeout=600
        )
        cls.results = json.loads(results_file.read_text())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    # -- the cases ------------------------------------------------------------------------------

    @classmethod
    def _folder(cls, *parts) -> Path:
        folder = cls.dir.joinpath(*parts)
        folder.mkdir(parents=True)
        return folder

    @classmethod
    def _train(cls, kind, label, data: dict, damaged) -> None:
        config = tiny_config(cls.dir / "shapes", epochs=1)
        config["data"] = data
        if data["name"] == "fashion_mnist":
            config["model"]["layers"] = [{"name": "fully_connected", "n_out": 10, "activation": "softmax"}]
        path = cls.dir / "configs" / f"{kind}-{label}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        argv = ["train", path, "--out", cls.dir / "out" / f"{kind}-{label}", "--quiet"]
        cls.cases.append((kind, label, argv, damaged))

    @staticmethod
    def _idx_data(folder: Path) -> dict:
        return {"name": "fashion_mnist", "path": str(folder), "flatten": True, "batch_size": 8, "validation_size": 10}

    @classmethod
    def _idx_cases(cls) -> None:
        for gz in (False, True):
            suffix = ".gz" if gz else ""
            kind = f"idx{suffix}"
            control = make_idx_set(cls._folder(kind, "control"), gz=gz)
            cls._train(kind, "control", cls._idx_data(control), None)
            for role, wrong_role in (("train-images", "train-labels"), ("t10k-labels", "t10k-images")):
                original = (control / f"{role}-idx{1 if 'labels' in role else 3}-ubyte{suffix}").read_bytes()
                wrong = (control / f"{wrong_role}-idx{1 if 'labels' in wrong_role else 3}-ubyte{suffix}").read_bytes()
                variants = damaged_variants(original, wrong)
                if gz:  # and gzip data that holds no gzip
                    variants["not-gzip"] = GARBAGE
                for label, content in variants.items():
                    folder = cls.dir / kind / f"{role}-{label}"
                    shutil.copytree(control, folder)
                    damaged = next(folder.glob(f"{role}-*"))
                    damaged.write_bytes(content)
                    cls._train(kind, f"{role}-{label}", cls._idx_data(folder), damaged)

    @classmethod
    def _image_folder_cases(cls) -> None:
        shapes = cls.dir / "shapes"
        data = lambda path: {"name": "image_folder", "path": str(path), "batch_size": 8}  # noqa: E731
        # a folder: empty, one image truncated, one image holding text, EPS, or a JPEG named .png
        empty = cls._folder("trees", "empty")
        cls._train("folder", "empty", data(empty), empty)
        for label, content in (
            ("truncated-image", (shapes / "train" / "circle" / "000.png").read_bytes()[:60]),
            ("text-image", b"not an image\n"),
            ("eps-image", EPS),
            ("jpeg-as-png", cls._jpeg_bytes()),
        ):
            tree = cls.dir / "trees" / label / "shapes"
            shutil.copytree(shapes, tree)
            (tree / "train" / "square" / "003.png").write_bytes(content)
            cls._train("folder", label, data(tree), f"{tree}: train/square/003.png")
        # archives: empty, truncated, garbage, and a valid archive holding a damaged image
        damaged_tree = cls.dir / "trees" / "text-image" / "shapes"
        for kind, make in (
            ("tar", lambda tree, target: tar_of(tree, target, "w")),
            ("tar.gz", lambda tree, target: tar_of(tree, target, "w:gz")),
            ("zip", zip_of),
        ):
            folder = cls._folder("archives", kind)
            control = make(shapes, folder / f"control.{kind}")
            cls._train(kind, "control", data(control), None)
            for label, content in damaged_variants(control.read_bytes(), GARBAGE).items():
                path = folder / f"{label}.{kind}"
                path.write_bytes(content)
                cls._train(kind, label, data(path), path)
            bad_member = make(damaged_tree, folder / f"bad-member.{kind}")
            cls._train(kind, "bad-member", data(bad_member), f"{bad_member}: shapes/train/square/003.png")

    @staticmethod
    def _jpeg_bytes() -> bytes:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, format="JPEG")
        return buffer.getvalue()

    @classmethod
    def _predict_cases(cls) -> None:
        folder = cls._folder("predict")
        image = (cls.dir / "shapes" / "test" / "circle" / "000.png").read_bytes()

        def predict(label, path, damaged):
            argv = ["predict", cls.run_dir, "--images", path, "--output", folder / f"{label}.csv"]
            cls.cases.append(("predict --images", label, argv, damaged))

        control = folder / "control.png"
        control.write_bytes(image)
        predict("control", control, None)
        variants = {**damaged_variants(image, b"not an image\n"), "eps": EPS, "jpeg-as-png": cls._jpeg_bytes()}
        for label, content in variants.items():
            path = folder / f"{label}.png"
            path.write_bytes(content)
            predict(label, path, path)
        archive = tar_of(cls.dir / "shapes" / "test", folder / "images.tar.gz", "w:gz")
        predict("archive-control", archive, None)
        for label, content in damaged_variants(archive.read_bytes(), GARBAGE).items():
            path = folder / f"{label}.tar.gz"
            path.write_bytes(content)
            predict(f"archive-{label}", path, path)

    @classmethod
    def _run_copy(cls, label: str) -> Path:
        run = cls.dir / "damaged_runs" / label / "tiny"
        shutil.copytree(cls.run_dir, run)
        return run

    @classmethod
    def _checkpoint_cases(cls) -> None:
        control = cls._run_copy("checkpoint-control")
        cls.cases.append(("checkpoint", "control", ["evaluate", control, "--checkpoint", "last"], None))
        original = (cls.run_dir / "last.npz").read_bytes()
        other_zip = io.BytesIO()
        with zipfile.ZipFile(other_zip, "w") as zf:
            zf.writestr("readme.txt", "a zip, not a model")
        other_npz = io.BytesIO()
        np.savez(other_npz, weights=np.ones(3))
        tampered = io.BytesIO()
        with np.load(cls.run_dir / "last.npz") as arrays:
            contents = {key: arrays[key] for key in arrays.files}
        first_parameter = next(k for k in contents if k.startswith("layers."))
        contents[first_parameter] = contents[first_parameter] + 1
        np.savez(tampered, **contents)
        variants = {
            **damaged_variants(original, GARBAGE),
            "other-zip": other_zip.getvalue(),
            "other-npz": other_npz.getvalue(),
            "checksum": tampered.getvalue(),
        }
        # Files without a checksum (as earlier versions wrote them) whose arrays do not fit the
        # architecture: each is refused naming the array (issue 32), never loaded as it is.
        config = json.loads(str(contents["config"]))
        del config["sha256"], config["config_sha256"]
        unchecked = {**contents, "config": np.array(json.dumps(config))}
        cls.array_needles = {}
        for label, needle, change in (
            ("int64-weights", "'layers.0.W'", lambda c: c.update({"layers.0.W": c["layers.0.W"].astype(np.int64)})),
            ("float16-weights", "'layers.0.W'", lambda c: c.update({"layers.0.W": c["layers.0.W"].astype(np.float16)})),
            ("extra-array", "'junk'", lambda c: c.update({"junk": np.zeros(3)})),
            ("missing-array", "'layers.4.b'", lambda c: c.pop("layers.4.b")),
            (
                "wrong-shape",
                "'layers.4.W'",
                lambda c: c.update({"layers.4.W": np.ascontiguousarray(c["layers.4.W"].T)}),
            ),
        ):
            altered, buffer = dict(unchecked), io.BytesIO()
            change(altered)
            np.savez(buffer, **altered)
            variants[f"unchecked-{label}"] = buffer.getvalue()
            cls.array_needles[f"unchecked-{label}"] = needle
        for label, content in variants.items():
            run = cls._run_copy(f"checkpoint-{label}")
            (run / "last.npz").write_bytes(content)
            for command in (["evaluate", run, "--checkpoint", "last"], ["train", cls.config, "--resume"]):
                argv = command + (["--out", run.parent, "--quiet"] if command[0] == "train" else [])
                cls.cases.append(("checkpoint", f"{label} ({command[0]})", argv, run / "last.npz"))

    @classmethod
    def _config_cases(cls) -> None:
        original = cls.config.read_text().encode()
        variants = {
            **damaged_variants(original, GARBAGE),
            "unclosed": b"name: [unclosed\n",
            "a-list": b"- name: tiny\n- epochs: 1\n",
            "wrong-types": b"name: tiny\nepochs: [1, 2]\ndata: 3\nmodel: x\noptimizer: {}\n",
        }
        folder = cls._folder("yaml")
        for label, content in variants.items():
            path = folder / f"{label}.yaml"
            path.write_bytes(content)
            argv = ["train", path, "--out", cls.dir / "out" / f"yaml-{label}", "--quiet"]
            cls.cases.append(("config", label, argv, path))
            run = cls._run_copy(f"config-{label}")
            (run / "config.yaml").write_bytes(content)
            cls.cases.append(("run config.yaml", label, ["evaluate", run], run / "config.yaml"))

    @classmethod
    def _metrics_cases(cls) -> None:
        original = (cls.run_dir / "metrics.json").read_bytes()
        variants = {**damaged_variants(original, GARBAGE), "a-list": b"[1, 2]\n"}
        for label, content in {"control": None, **variants}.items():
            run = cls._run_copy(f"metrics-{label}")
            if content is not None:
                (run / "metrics.json").write_bytes(content)
            argv = ["report", run, "--output", run / "report.md"]
            cls.cases.append(("run metrics.json", label, argv, None if content is None else run / "metrics.json"))

    # -- the checks -----------------------------------------------------------------------------

    def check_kind(self, kind: str) -> None:
        results = [(c, r) for c, r in zip(self.cases, self.results) if c[0] == kind]
        self.assertGreater(len(results), 2, kind)
        for (_, label, _, damaged), result in results:
            with self.subTest(kind=kind, case=label):
                lines = shown_lines(result["stderr"])
                if damaged is None:
                    self.assertEqual(result["rc"], 0, result["stderr"])
                    continue
                self.assertNotIn("Traceback", result["stderr"])
                self.assertEqual(result["rc"], 2, result["stderr"])
                self.assertEqual(len(lines), 1, result["stderr"])
                self.assertTrue(lines[0].startswith("error: "), lines[0])
                self.assertIn(str(damaged), lines[0])

    def test_idx_files(self):
        self.check_kind("idx")

    def test_gzipped_idx_files(self):
        self.check_kind("idx.gz")

    def test_image_folders(self):
        self.check_kind("folder")

    def test_tar_archives(self):
        self.check_kind("tar")

    def test_gzipped_tar_archives(self):
        self.check_kind("tar.gz")

    def test_zip_archives(self):
        self.check_kind("zip")

    def test_images_to_predict(self):
        self.check_kind("predict --images")

    def test_checkpoints(self):
        self.check_kind("checkpoint")

    def test_checkpoints_without_checksum_name_the_array(self):
        results = [(c, r) for c, r in zip(self.cases, self.results) if c[1].startswith("unchecked-")]
        self.assertEqual(len(results), 2 * len(self.array_needles))
        for (_, label, _, _), result in results:
            with self.subTest(case=label):
                lines = shown_lines(result["stderr"])
                self.assertEqual(len(lines), 1, result["stderr"])
                self.assertIn(self.array_needles[label.split(" ")[0]], lines[0])

    def test_configs(self):
        self.check_kind("config")

    def test_run_configs(self):
        self.check_kind("run config.yaml")

    def test_run_metrics(self):
        self.check_kind("run metrics.json")

    def test_every_case_was_run(self):
        self.assertEqual([r["argv"] for r in self.results], [[str(a) for a in c[2]] for c in self.cases])


class TestDecompressionBombsThroughTheCLI(unittest.TestCase):
    """Issue 12's crafted inputs: refused with one line naming the file, memory bounded."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        make_tree(cls.dir / "shapes", {"train": 8, "test": 2})
        config = cls.dir / "tiny.yaml"
        config.write_text(yaml.safe_dump(tiny_config(cls.dir / "shapes", epochs=1)))
        cli("train", config, "--out", cls.dir / "runs", "--quiet", cwd=cls.dir)
        cls.run_dir = cls.dir / "runs" / "tiny"

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_measured(self, *args) -> tuple[subprocess.CompletedProcess, float]:
        env = {**os.environ, "NEURAL_NETWORKS_DATA": str(self.dir / "cache")}
        result = subprocess.run(
            [sys.executable, "-c", PEAK_MEMORY, *map(str, args)],
            cwd=self.dir,
            env=env,
            capture_output=True,
            timeout=300,
        )  # bytes: text mode would turn the bars' carriage returns into newlines
        *shown, peak = shown_lines(result.stderr.decode())
        return result, shown, float(peak.split("=")[1])

    def assertRefused(self, shown, rc, *needles):
        self.assertEqual(rc, 2, shown)
        self.assertEqual(len(shown), 1, shown)
        self.assertTrue(shown[0].startswith("error: "), shown)
        for needle in needles:
            self.assertIn(needle, shown[0])

    def test_a_10_gb_tar_gz(self):
        bomb = tar_gz_bomb(self.dir / "bomb.tar.gz", 10 << 30)
        self.assertLess(bomb.stat().st_size, 12 << 20)
        for args in (
            ("predict", self.run_dir, "--images", bomb, "--output", self.dir / "bomb.csv"),
            ("train", self._config_for(bomb), "--out", self.dir / "bomb_runs", "--quiet"),
        ):
            with self.subTest(args[0]):
                result, shown, peak_mb = self.run_measured(*args)
                self.assertRefused(shown, result.returncode, str(bomb), "more than 4294967296 bytes")
                # 16x the archive at most is decompressed in memory before the rest is streamed
                self.assertLess(peak_mb, 600)
        self.assertFalse((self.dir / "bomb.csv").exists())
        self.assertFalse((self.dir / "bomb_runs" / "tiny").exists())

    def _config_for(self, data_path: Path) -> Path:
        path = self.dir / f"{data_path.name}.yaml"
        path.write_text(yaml.safe_dump(tiny_config(data_path, epochs=1)))
        return path

    def test_decompression_bomb_pngs(self):
        # 40000^2 pixels trips Pillow's own bomb check; 9000^2 (81 Mpx) is under it, over ours
        for side, needle in ((40_000, "decompression bomb"), (9_000, "9000x9000 pixels")):
            bomb = png_bomb(self.dir / f"bomb{side}.png", side)
            folder = self.dir / f"pngs{side}"
            folder.mkdir()
            shutil.copy(bomb, folder / "x.png")
            for target in (bomb, folder):
                with self.subTest(side=side, target=target.name):
                    args = ("predict", self.run_dir, "--images", target, "--output", self.dir / "png.csv")
                    result, shown, peak_mb = self.run_measured(*args)
                    self.assertRefused(shown, result.returncode, str(target), needle)
                    self.assertLess(peak_mb, 300)

    def test_an_idx_gzip_bomb(self):
        folder = make_idx_set(self.dir / "idx_bomb")
        images = folder / "train-images-idx3-ubyte.gz"
        header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (60, 28, 28))
        images.write_bytes(gzip.compress(header + bytes(200 << 20)))  # states 47 KB, holds 200 MB
        config = tiny_config(folder, epochs=1)
        config["data"] = TestDamagedFilesThroughTheCLI._idx_data(folder)
        config["model"]["layers"] = [{"name": "fully_connected", "n_out": 10, "activation": "softmax"}]
        path = self.dir / "idx_bomb.yaml"
        path.write_text(yaml.safe_dump(config))
        result, shown, peak_mb = self.run_measured("train", path, "--out", self.dir / "idx_runs", "--quiet")
        self.assertRefused(shown, result.returncode, str(images))
        self.assertLess(peak_mb, 300)


if __name__ == "__main__":
    unittest.main()
