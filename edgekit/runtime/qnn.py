"""The QNN execution provider: registering Qualcomm's plugin, the chip table, and raw sessions.

``onnxruntime-qnn`` (the ``qnn`` extra; Windows / Linux x86_64 wheels carrying the Hexagon HTP
*emulator*) is a *plugin* execution provider: it is registered once per process and chosen through
its devices (``SessionOptions.add_provider_for_devices``). ``providers=["QNNExecutionProvider"]``
does not work for it: the session silently runs every node on the CPU EP.
:func:`qnn_session` does it the way that works; :func:`edgekit.deploy.npu.npu_check` reports placement.

>>> resolve_soc("8 Gen 3")
Soc(id=57, part='SM8650', name='Snapdragon 8 Gen 3')
>>> sess = qnn_session("model_qdq.onnx", soc=57)        # doctest: +SKIP
>>> [g.ep_name for g in sess.get_provider_graph_assignment_info()]  # doctest: +SKIP
['QNNExecutionProvider', 'CPUExecutionProvider']
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import sys
import tempfile
import threading
from dataclasses import dataclass

from .._errors import MissingExtraError, NpuError, SocError
from .._extras import require

EP = "QNNExecutionProvider"


@dataclass(frozen=True)
class Soc:
    """A Snapdragon chip as the QNN EP's ``soc_model`` option knows it."""

    id: int
    part: str
    name: str

    def __str__(self) -> str:
        return f"{self.name} ({self.part}, soc_model {self.id})" if self.part else f"soc_model {self.id}"


# id <- part number: the QNN EP's own name table (onnxruntime-qnn 2.7.0 takes soc_model="SM8650" and
# compiles for 57, read back from its op trace); each id compiles and runs in the emulator.
# Part number -> name: Qualcomm's product naming (not in the wheel). 88 (SC8480XP) and 103 (SM8975)
# pass the same checks but are left out: we could not confirm their product names offline.
SOCS = {s.id: s for s in (
    Soc(30, "SM8350", "Snapdragon 888"), Soc(36, "SM8450", "Snapdragon 8 Gen 1"),
    Soc(42, "SM8475", "Snapdragon 8+ Gen 1"), Soc(43, "SM8550", "Snapdragon 8 Gen 2"),
    Soc(57, "SM8650", "Snapdragon 8 Gen 3"), Soc(69, "SM8750", "Snapdragon 8 Elite"),
    Soc(87, "SM8850", "Snapdragon 8 Elite Gen 5"), Soc(60, "SC8380XP", "Snapdragon X Elite"),
)}


# Ops QNN rejects, and a replacement that this wheel was checked to place on QNN (npu_check's hints).
REPLACEMENTS = {
    "Erf": "QNN takes Erf only inside the exact-GELU pattern x*0.5*(1+Erf(x/sqrt(2))); for GELU, export one Gelu "
           "node instead (torch.onnx.export(..., opset_version=20)), which runs on QNN",
    "Hardmax": "ArgMax runs on QNN: output ArgMax(logits), or take the argmax after the model",
    "FastGelu": "Gelu (opset 20, or com.microsoft Gelu) runs on QNN",
    "Celu": "Elu runs on QNN (Celu with alpha=1 is Elu)",
    "Softsign": "write x / (1 + Abs(x)): Abs, Add and Div run on QNN",
}


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9+]", "", text.lower()).removeprefix("snapdragon")


def resolve_soc(soc: int | str | Soc) -> Soc:
    """A chip from an id (``57``), a part number (``"SM8650"``) or a name (``"8 Gen 3"``).

    Unknown ids pass through (the EP judges them); unknown names are refused, because the EP
    silently compiles for no chip (soc_model 0) when it does not know a name.
    """
    if isinstance(soc, Soc):
        return soc
    if isinstance(soc, int) or str(soc).strip().isdigit():
        return SOCS.get(int(soc)) or Soc(int(soc), "", "")
    for s in SOCS.values():
        if _key(str(soc)) in (_key(s.part), _key(s.name)):
            return s
    known = "; ".join(f"{s.id} = {s.part} {s.name}" for s in SOCS.values())
    raise SocError(f"unknown soc {soc!r}: expected a soc_model number or one of: {known}")


def qnn_module():
    try:
        return require("onnxruntime_qnn", extra="qnn", purpose="the QNN execution provider")
    except MissingExtraError as exc:
        here = f"{platform.system()} {platform.machine()}"
        no_wheel = platform.system() != "Windows" and here.lower() not in ("linux x86_64", "linux amd64")
        raise MissingExtraError(f"{exc}; the onnxruntime-qnn wheel exists for Windows and Linux x86_64 only"
                                + (f" (this is {here}: no wheel here)" if no_wheel else "")) from exc


_LOCK = threading.Lock()


def qnn_devices() -> list:
    """Register the QNN plugin library (once per process) and return its ``OrtEpDevice`` list."""
    qnn = qnn_module()
    import onnxruntime as ort

    if not hasattr(ort.InferenceSession, "get_provider_graph_assignment_info"):
        raise NpuError(f"onnxruntime {ort.__version__} lacks the plugin-EP API that npu-check needs "
                       "(verified with 1.31 and 1.32): pip install -U onnxruntime onnxruntime-qnn")
    with _LOCK:  # a second registration fails ("EP library is already registered"): look first
        if not any(d.ep_name == EP for d in ort.get_ep_devices()):
            try:
                with native_output([]):
                    ort.register_execution_provider_library(EP, qnn.get_library_path())
            except Exception as exc:
                if "already registered" not in str(exc):  # registered, but it offers no device
                    raise NpuError(f"could not load {qnn.get_library_path()}: {str(exc).splitlines()[0]} "
                                   "(the Linux wheel needs glibc >= 2.35)") from None
    devices = [d for d in ort.get_ep_devices() if d.ep_name == EP]
    if not devices:
        raise NpuError("the QNN library is registered but offers no device")
    return devices


def qnn_session_options(soc: int | str | Soc, *, options: dict | None = None, config: dict | None = None):
    """``ort.SessionOptions`` with QNN (HTP backend, chip ``soc``) first and the CPU EP behind it."""
    import onnxruntime as ort

    return add_qnn(ort.SessionOptions(), soc, options=options, config=config)


def add_qnn(so, soc: int | str | Soc | None, *, options: dict | None = None, config: dict | None = None):
    """Put QNN (HTP backend) ahead of the CPU EP in the ``ort.SessionOptions`` ``so``; returns ``so``.

    ``soc=None`` leaves the chip to the EP: right on a Snapdragon, where it finds its own chip;
    the emulator (Linux x86_64) needs one.
    """
    so.log_severity_level = 3  # errors only: every QNN session logs two warnings that do not apply here
    for key, value in {"session.record_ep_graph_assignment_info": "1", **(config or {})}.items():
        so.add_session_config_entry(key, str(value))
    # soc_model last (options cannot drop it): without it a session may inherit the previous
    # session's chip (shared/notes/qnn.md), and fp16 mode fails on x86
    chip = {} if soc is None else {"soc_model": str(resolve_soc(soc).id)}
    so.add_provider_for_devices(qnn_devices(), {"backend_type": "htp", **(options or {}), **chip})
    return so


def qnn_session(model: str | os.PathLike, soc: int | str | Soc, **kwargs):
    """A raw ``onnxruntime.InferenceSession`` on QNN/HTP for chip ``soc`` (``model``: a path or zoo name).

    ``enable_fallback=0``: otherwise Python quietly retries CPU-only when the EP fails. Note that
    ``providers=["QNNExecutionProvider"]`` silently runs every node on CPU: a plugin EP is chosen
    through its devices (``SessionOptions.add_provider_for_devices``). ``kwargs``: ``options``
    (QNN provider options) and ``config`` (session config entries) of :func:`qnn_session_options`.
    """
    import onnxruntime as ort

    from .zoo import resolve

    path = resolve(model)[0]
    return ort.InferenceSession(str(path), sess_options=qnn_session_options(soc, **kwargs), enable_fallback=0)


@contextlib.contextmanager
def native_output(lines: list[str]):
    """Collect what C++ writes to fds 1 and 2 (ORT's log, the QNN banner) into ``lines``.

    Process-wide while it lasts: another thread's output in that window lands here too.
    """
    sys.stdout.flush(), sys.stderr.flush()
    try:
        saved = (os.dup(1), os.dup(2))
    except OSError:  # no usable fds (pythonw): let the output go where it goes
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1), os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
            sink.seek(0)
            lines += re.sub(r"\x1b\[[0-9;]*m", "", sink.read().decode(errors="replace")).splitlines()

