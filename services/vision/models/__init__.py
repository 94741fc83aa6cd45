"""The trained grocery model (ONNX and metadata); training lives in training/train_vision.py."""
