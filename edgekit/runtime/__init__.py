"""Loading and running ONNX models: the zoo, execution providers, device facts, datasets, doctor."""
