"""The offline model zoo: one manifest (``models/manifest.json``), committed small models,
and build scripts that regenerate every model from code and data in registry packages.

>>> "digits-cnn" in names()
True
>>> entry("digits-cnn").licence
'MIT (edgekit)'
>>> path("digits-cnn").name
'digits-cnn.onnx'
"""

from __future__ import annotations

# json, hashlib, subprocess and difflib are imported where used: edgekit.load(path) needs none of them.
import os
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .._errors import ModelNotFoundError, ZooError
from .._io import atomic_write, file_sha256
from .._paths import PACKAGE, cache_dir, models_dir


@dataclass(frozen=True)
class ZooEntry:
    """One manifest entry (see ``models/README.md`` for every key)."""

    name: str
    file: str
    committed: bool
    sha256: str
    bytes: int
    licence: str
    task: str
    description: str
    provenance: str
    build: dict
    inputs: list
    outputs: list
    preprocess: dict = field(default_factory=dict)
    postprocess: dict = field(default_factory=dict)
    labels: list | None = None
    labels_file: str | None = None
    reference: dict = field(default_factory=dict)

    @property
    def deterministic(self) -> bool:
        return bool(self.build.get("deterministic"))

    def build_command(self) -> str:
        # torch must be the CPU build: on Linux an unpinned or PyPI-default torch is a multi-GB
        # CUDA build, so the manifest pins it; "install" is the exact command to run first.
        install = self.build.get("install")
        return f"{install} && edgekit models build {self.name}" if install else f"edgekit models build {self.name}"


@lru_cache(maxsize=4)
def _manifest(directory: Path) -> dict[str, ZooEntry]:
    import json

    data = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    known = set(ZooEntry.__dataclass_fields__)
    return {m["name"]: ZooEntry(**{k: v for k, v in m.items() if k in known}) for m in data["models"]}


def manifest() -> dict[str, ZooEntry]:
    return _manifest(models_dir())


def names() -> list[str]:
    return list(manifest())


def is_zoo_name(name: str) -> bool:
    try:
        return name in manifest()
    except ZooError:
        return False


def suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, names(), n=1)
    return f" — did you mean {close[0]!r}?" if close else ""


def entry(name: str) -> ZooEntry:
    models = manifest()
    if name not in models:
        raise ZooError(f"no zoo model {name!r}; the zoo has {', '.join(models)}{suggest(name)}")
    return models[name]


def labels(name: str) -> list[str] | None:
    """Class names of a zoo classifier, or None."""
    e = entry(name)
    if e.labels is not None:
        return list(e.labels)
    if e.labels_file:
        return (models_dir() / e.labels_file).read_text(encoding="utf-8").splitlines()
    return None


def location(name: str) -> Path:
    """Where the zoo model's file is (or will be, once built)."""
    e = entry(name)
    return models_dir() / e.file if e.committed else cache_dir() / e.file


def _expected_sha(e: ZooEntry, file: Path) -> str:
    import json

    # A model built here is checked against the sha256 recorded when it was built here: the
    # manifest's sha256 is the reference build's, and torch's CPU kernels round differently on
    # another kind of CPU (AVX2 vs AVX-512), so an honest rebuild may differ in the last bits.
    record = file.with_suffix(file.suffix + ".json")
    if not e.committed and record.is_file():
        return json.loads(record.read_text())["sha256"]
    return e.sha256


def path(name: str, *, build: bool = True) -> Path:
    """The checked path of a zoo model, building it first if it is built on demand.

    Raises :class:`ZooError` when the file is missing and cannot be built here, or when its
    bytes do not match the manifest (a corrupt or edited file).
    """
    e = entry(name)
    file = location(name)
    if not file.is_file():
        if e.committed:
            raise ZooError(f"zoo file {file} is missing from this checkout; restore it with: git checkout -- models/{e.file}")
        if not build:
            raise ZooError(f"{name} is built on demand and not built yet: run  {e.build_command()}")
        build_model(name)
    sha = file_sha256(file)
    if sha != _expected_sha(e, file):
        raise ZooError(
            f"{file} does not match the manifest (sha256 {sha[:12]}..., expected {e.sha256[:12]}...): "
            f"the file is corrupt or was changed. Rebuild it with: {e.build_command()}"
            + (f"  (or git checkout -- models/{e.file})" if e.committed else "")
        )
    return file


@dataclass
class BuildResult:
    name: str
    path: str
    sha256: str
    matches_manifest: bool
    report: dict

    def to_dict(self) -> dict:
        return {"schema": "edgekit.zoo.build/1", **asdict(self)}

    def __str__(self) -> str:
        same = "matches the manifest" if self.matches_manifest else "differs from the manifest"
        return f"{self.name}: built {self.path} (sha256 {self.sha256[:12]}, {same})"


def build_model(name: str, out: Path | None = None) -> BuildResult:
    """Run the model's build script (in a subprocess) and write the model to ``out``."""
    import json
    import subprocess

    e = entry(name)
    out = Path(out) if out is not None else location(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    script = models_dir() / e.build["script"]
    cmd = [sys.executable, str(script), *e.build.get("args", []), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        what = "a build dependency is missing" if proc.returncode == 3 else f"the build failed (exit {proc.returncode})"
        raise ZooError(f"building {name}: {what}: {' | '.join(tail)}. Needs: {', '.join(e.build.get('requires', [])) or 'core only'}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    sha = file_sha256(out)
    atomic_write(out.with_suffix(out.suffix + ".json"), json.dumps({"sha256": sha, "report": report}, indent=1))
    return BuildResult(name, str(out), sha, sha == e.sha256, report)


@dataclass
class VerifyResult:
    name: str
    ok: bool
    detail: str
    accuracy: float | None = None

    def to_dict(self) -> dict:
        return {"schema": "edgekit.zoo.verify/1", **asdict(self)}

    def __str__(self) -> str:
        acc = f", accuracy {self.accuracy:.3f}" if self.accuracy is not None else ""
        return f"{self.name}: {'ok' if self.ok else 'FAILED'} ({self.detail}{acc})"


def verify(name: str, *, accuracy: bool = False) -> VerifyResult:
    """Check a zoo model: file present, sha256 as in the manifest, and (``accuracy=True``) for
    digits-cnn the reference accuracy re-measured on the fixed test split."""
    e = entry(name)
    file = location(name)
    if not file.is_file():
        state = "missing from the checkout" if e.committed else f"not built (optional: {e.build_command()})"
        return VerifyResult(name, not e.committed, state)
    try:
        path(name, build=False)
    except ZooError as exc:
        return VerifyResult(name, False, str(exc))
    detail = f"sha256 ok ({file.stat().st_size / 1e3:.0f} kB)"
    acc = None
    if accuracy and name == "digits-cnn":
        import onnxruntime as ort  # raw onnxruntime: the check must not trust edgekit's own loader

        from . import datasets

        x, y = datasets.digits(split="test")
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        acc = float((session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1) == y).mean())
        want = float(e.reference["value"])
        detail += f", accuracy {acc:.4f} (reference {want:.4f})"
        if abs(acc - want) > 1e-6:
            return VerifyResult(name, False, detail, acc)
    return VerifyResult(name, True, detail, acc)


def verify_all(*, accuracy: bool = False) -> list[VerifyResult]:
    return [verify(n, accuracy=accuracy) for n in names()]


def describe(name: str) -> dict[str, Any]:
    """The manifest entry plus where the file is and whether it is present."""
    e = entry(name)
    d = dict(e.__dict__)
    d["location"] = str(location(name))
    d["present"] = location(name).is_file()
    return d


def resolve(model) -> tuple[Path, str | None]:
    """(path, zoo name or None) for what :func:`edgekit.load` accepts: a path to an .onnx file or a zoo name."""
    if isinstance(model, (bytes, bytearray)):
        raise TypeError("load() takes a path or a zoo name; for bytes use onnxruntime.InferenceSession directly")
    file = Path(model)
    if file.is_file():
        return file, None
    name = str(model)
    if is_zoo_name(name):
        return path(name), name
    if file.exists():
        raise ModelNotFoundError(f"{file} is a directory, expected an .onnx file")
    raise ModelNotFoundError(
        f"no model file {str(file)!r} (looked in {Path.cwd()}) and no zoo model of that name. "
        f"Zoo models: {', '.join(names())}{suggest(name)}. List them with: edgekit models list"
    )
