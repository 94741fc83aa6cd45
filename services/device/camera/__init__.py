"""Lane cameras: frame sources, edge motion gating and the capture pipeline."""
