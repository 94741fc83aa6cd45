"""The trained grocery model (ONNX and metadata) and the script that trains it."""
