"""Provider choice: explicit, aliases, auto (with its reason) and the errors."""

from __future__ import annotations

import platform
from pathlib import Path

import onnxruntime as ort
import pytest

import edgekit as ek
from edgekit.runtime import providers as P


def test_auto_on_a_plain_pc_takes_the_cpu_and_says_why(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    choice = P.resolve_providers("auto", where=P.Platform(None, "Linux", "x86_64"))
    assert choice.providers == ["CPUExecutionProvider"] and choice.chosen == "CPUExecutionProvider"
    assert choice.available == ["AzureExecutionProvider", "CPUExecutionProvider"]
    assert choice.reason == ("auto: no GPU or NPU execution provider in this onnxruntime build (onnxruntime-gpu, "
                             "-directml or -openvino bring one), so the CPU EP"), choice


def test_auto_here_falls_back_to_the_cpu_and_none_means_auto():
    choice = P.resolve_providers("auto")
    assert choice.providers[-1] == "CPUExecutionProvider" and choice.reason.startswith("auto: ")
    assert choice.available == ort.get_available_providers()
    assert P.resolve_providers(None) == choice


def test_auto_on_a_pc_prefers_an_accelerator_wheel_and_says_what_it_skipped(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["DmlExecutionProvider", "CPUExecutionProvider"])
    choice = P.resolve_providers("auto", where=P.Platform(None, "Windows", "x86_64"))
    assert choice.providers == ["DmlExecutionProvider", "CPUExecutionProvider"]
    assert "CUDAExecutionProvider" in choice.reason  # says what it skipped


FIXTURES = Path(__file__).parent / "fixtures" / "devices"
TRT = "TensorrtExecutionProvider"
GPU = [TRT, "CUDAExecutionProvider", "CPUExecutionProvider"]


# What each recorded board says it is (tests/test_device.py checks that board() reads these).
RECORDED = {
    "rpi4": ("Raspberry Pi 4 Model B Rev 1.4", "rpi4", "aarch64"),
    "rpi5": ("Raspberry Pi 5 Model B Rev 1.0", "rpi5", "aarch64"),
    "jetson-orin-nano": ("NVIDIA Jetson Orin Nano Developer Kit (L4T R36.3.0)", "jetson", "aarch64"),
    "snapdragon": ("Qualcomm Technologies, Inc. X1E80100 CRD", "snapdragon", "aarch64"),
    "x86-laptop": (None, None, "x86_64"),
}
SOCS = {"snapdragon": 60}  # X1E80100 is a Snapdragon X Elite: QNN soc_model 60


def where(fixture: str, system: str = "Linux", qnn: bool = False) -> P.Platform:
    """The Platform "auto" would see on a recorded board."""
    _, family, machine = RECORDED[fixture]
    return P.Platform(family, system, machine, qnn, SOCS.get(fixture))


@pytest.mark.parametrize("fixture", sorted(RECORDED))
def test_snapdragon_soc_from_the_board_name(fixture):
    assert P.snapdragon_soc(RECORDED[fixture][0]) == SOCS.get(fixture)


# board, OS, onnxruntime-qnn installed, providers this onnxruntime offers -> chosen, words in the reason
BOARDS = [
    ("rpi4", "Linux", False, ["CPUExecutionProvider"], "CPUExecutionProvider", "Raspberry Pi (rpi4)"),
    ("rpi5", "Linux", False, ["XnnpackExecutionProvider", "CPUExecutionProvider"], "CPUExecutionProvider",
     "Raspberry Pi (rpi5)"),
    ("jetson-orin-nano", "Linux", False, GPU, TRT, "builds an engine"),
    ("jetson-orin-nano", "Linux", False, GPU[1:], "CUDAExecutionProvider", "a Jetson with onnxruntime-gpu"),
    ("jetson-orin-nano", "Linux", False, ["CPUExecutionProvider"], "CPUExecutionProvider", "onnxruntime-gpu wheel"),
    ("snapdragon", "Windows", True, ["CPUExecutionProvider"], "QNNExecutionProvider", "Hexagon NPU"),
    ("snapdragon", "Windows", False, ["CPUExecutionProvider"], "CPUExecutionProvider", 'pip install "edgekit[qnn]"'),
    ("snapdragon", "Linux", False, ["CPUExecutionProvider"], "CPUExecutionProvider", "out of reach"),
    ("x86-laptop", "Linux", False, ["CPUExecutionProvider"], "CPUExecutionProvider", "no GPU or NPU"),
    ("x86-laptop", "Linux", False, ["CoreMLExecutionProvider", "CPUExecutionProvider"], "CPUExecutionProvider",
     "no GPU or NPU"),  # CoreML only on Apple silicon
]


@pytest.mark.parametrize("fixture, system, qnn, available, chosen, words", BOARDS)
def test_auto_per_board(fixture, system, qnn, available, chosen, words):
    choice = P.auto_choice(available, where(fixture, system, qnn))
    assert (choice.chosen, choice.providers[-1]) == (chosen, "CPUExecutionProvider"), choice
    assert words in choice.reason, f"expected {words!r} in the reason, got {choice.reason!r}"


def test_auto_on_a_jetson_caches_tensorrt_engines(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path))
    choice = P.auto_choice(GPU, where("jetson-orin-nano"))
    assert choice.providers == [(TRT, {"trt_engine_cache_enable": "True",
                                       "trt_engine_cache_path": str(tmp_path / "tensorrt")}),
                                "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_auto_on_a_snapdragon_with_qnn_names_the_plugin_and_the_chip():
    choice = P.auto_choice(["CPUExecutionProvider"], where("snapdragon", "Windows", qnn=True))
    assert (choice.plugin, choice.soc, choice.providers) == ("QNNExecutionProvider", 60, ["CPUExecutionProvider"])


def test_auto_on_apple_silicon():
    mac = P.Platform(None, "Darwin", "aarch64")
    assert P.auto_choice(["CoreMLExecutionProvider", "CPUExecutionProvider"], mac).chosen == "CoreMLExecutionProvider"
    assert "no CoreML EP" in P.auto_choice(["CPUExecutionProvider"], mac).reason
    intel = P.Platform(None, "Darwin", "x86_64")
    assert P.auto_choice(["CoreMLExecutionProvider", "CPUExecutionProvider"], intel).chosen == "CPUExecutionProvider"


# platform.machine() as each OS spells it -> the name edgekit uses
MACHINES = {"x86_64": "x86_64", "AMD64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64", "ARM64": "aarch64"}


def test_platform_here_is_this_machine():
    here = P.Platform.here()
    assert here is P.Platform.here(), "probed once"
    assert (here.system, here.machine) == (platform.system(), MACHINES.get(platform.machine(), platform.machine()))
    if not Path("/proc/device-tree/model").exists() and platform.system() != "Windows":
        assert (here.family, here.soc) == (None, None), "a PC without a device tree is no board"


def test_platform_of_a_board_name():
    pi = P.Platform.of("Raspberry Pi 5 Model B Rev 1.0", "rpi5", qnn=False)
    assert (pi.family, pi.qnn, pi.soc) == ("rpi5", False, None)
    x = P.Platform.of("Qualcomm Technologies, Inc. X1E80100 CRD", "snapdragon", qnn=True)
    assert (x.family, x.qnn, x.soc) == ("snapdragon", True, 60)


@pytest.mark.parametrize("asked", ["cpu", "CPU", "CPUExecutionProvider", ["cpu"], [("CPUExecutionProvider", {})]])
def test_explicit_and_aliases(asked):
    assert P.resolve_providers(asked).chosen == "CPUExecutionProvider"


def test_unknown_provider_lists_known_names():
    with pytest.raises(ek.ProviderError, match=r"unknown execution provider 'warp-drive'.*CPUExecutionProvider"):
        P.resolve_providers("warp-drive")


def test_unavailable_provider_lists_available_and_install_hint(relu_path):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ek.ProviderError, match=r"CUDAExecutionProvider is not available.*available here: .*CPUExecutionProvider.*onnxruntime-gpu"):
        ek.load(relu_path, providers=["cuda"])
    with pytest.raises(ValueError, match="empty"):
        ek.load(relu_path, providers=[])


def test_model_records_choice(relu_path):
    m = ek.load(relu_path, providers="cpu")
    assert m.provider_choice.chosen == "CPUExecutionProvider" and m.provider_choice.reason == "explicit"
    assert m.providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize("asked", ["qnn", "QNNExecutionProvider", ["qnn", "cpu"], [("QNNExecutionProvider", {"soc_model": "57"})]])
def test_qnn_in_a_providers_list_is_refused_with_the_way_that_works(asked):
    with pytest.raises(ek.ProviderError, match=r"plugin execution provider.*CPU EP") as info:
        P.resolve_providers(asked)
    msg = str(info.value)
    assert "edgekit.runtime.qnn.qnn_session(model, soc=57)" in msg and "edgekit npu-check MODEL --soc 57" in msg, msg


def test_qnn_is_refused_even_once_registered_because_a_list_runs_it_on_cpu(relu_path):
    """The oracle for the refusal: raw ONNX Runtime given providers=["QNNExecutionProvider"] after
    the plugin is registered (so it is 'available') places every node on the CPU EP."""
    pytest.importorskip("onnxruntime_qnn", reason="needs the qnn extra (pip install 'edgekit[qnn]')")
    from edgekit.runtime.qnn import EP, qnn_devices

    qnn_devices()  # registers the plugin: from now on get_available_providers() lists it
    assert EP in ort.get_available_providers()
    so = ort.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    raw = ort.InferenceSession(str(relu_path), sess_options=so, providers=[EP])
    placed = {g.ep_name for g in raw.get_provider_graph_assignment_info()}
    assert placed == {"CPUExecutionProvider"} and raw.get_providers() == ["CPUExecutionProvider"], placed
    with pytest.raises(ek.ProviderError, match="plugin execution provider"):
        ek.load(relu_path, providers="qnn")
