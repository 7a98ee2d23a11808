"""Hardware-aware neural architecture search: search space, supernet, training, hardware cost and search."""
