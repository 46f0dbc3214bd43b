"""Training and evaluating a detector: the proxy loop and its recipe, the detection loss and decoding, COCO evaluation, checkpoints, inference on images and drawing detections."""
