"""Measuring a detector without training it: exact parameter and FLOP counts (fvcore), the latency protocol and its per-block table, zero-cost scores, ONNX export."""
