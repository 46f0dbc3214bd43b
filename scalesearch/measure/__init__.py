"""Measuring a detector without training it: exact parameter and FLOP counts (fvcore), the latency protocol, zero-cost scores, ONNX export."""
