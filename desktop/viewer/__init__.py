"""The software 3D viewer: an orbit camera, a numpy rasteriser and the QWidget that shows it."""
