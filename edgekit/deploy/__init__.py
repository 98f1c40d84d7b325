"""Making models fit a device: quantization, graph optimization, evaluation, NPU readiness."""
