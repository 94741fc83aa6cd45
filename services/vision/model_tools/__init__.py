"""Run-time grocery recognition: ONNX classifier, few-shot enrolment and evaluation."""
