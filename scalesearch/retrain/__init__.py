"""The retraining layer: trains picked specs of a finished run at a longer budget and writes the records that
reports read.

``fidelity`` (``scalesearch fidelity``) retrains the best points to check the proxy's ranking; ``extrapolate``
(``scalesearch extrapolate``) applies scaling rules one rung above the searched ones. Both write records whose
types and statistics live below this layer, in torch-free modules (``scalesearch.fidelity``,
``scalesearch.extrapolate``), so a report never imports training.
"""
