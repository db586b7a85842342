"""PyTorch side of maskface: backbones, MFSA attention, CAL losses (training and export follow)."""
