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
