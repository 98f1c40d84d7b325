"""Provider choice: explicit, aliases, auto (with its reason) and the errors."""

from __future__ import annotations

import onnxruntime as ort
import pytest

import edgekit as ek
from edgekit import providers as P


def test_auto_picks_first_available_and_says_why():
    choice = P.resolve_providers("auto")
    available = ort.get_available_providers()
    expected = next(p for p in P.AUTO_ORDER if p in available)
    assert choice.chosen == expected
    assert choice.providers[-1] == "CPUExecutionProvider"  # always a CPU fallback
    assert expected in choice.reason and choice.available == available
    assert P.resolve_providers(None).chosen == expected


def test_auto_prefers_accelerators(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CoreMLExecutionProvider", "CPUExecutionProvider"])
    choice = P.resolve_providers("auto")
    assert choice.providers == ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    assert "CUDAExecutionProvider" in choice.reason  # says what it skipped


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
    assert "edgekit.qnn.qnn_session(model, soc=57)" in msg and "edgekit npu-check MODEL --soc 57" in msg, msg


def test_qnn_is_refused_even_once_registered_because_a_list_runs_it_on_cpu(relu_path):
    """The oracle for the refusal: raw ONNX Runtime given providers=["QNNExecutionProvider"] after
    the plugin is registered (so it is 'available') places every node on the CPU EP."""
    pytest.importorskip("onnxruntime_qnn", reason="needs the qnn extra (pip install 'edgekit[qnn]')")
    from edgekit.qnn import EP, qnn_devices

    qnn_devices()  # registers the plugin: from now on get_available_providers() lists it
    assert EP in ort.get_available_providers()
    so = ort.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    raw = ort.InferenceSession(str(relu_path), sess_options=so, providers=[EP])
    placed = {g.ep_name for g in raw.get_provider_graph_assignment_info()}
    assert placed == {"CPUExecutionProvider"} and raw.get_providers() == ["CPUExecutionProvider"], placed
    with pytest.raises(ek.ProviderError, match="plugin execution provider"):
        ek.load(relu_path, providers="qnn")
