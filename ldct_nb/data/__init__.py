"""Data stage: synthetic phantoms, low-dose simulation, DICOM reading, manifests, cache, datasets."""
