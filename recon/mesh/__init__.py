"""Mesh clean-up, placement and texture baking: from a raw reconstructed mesh to an AR asset.

Steps, each a small module: crop (to what the cameras look at, or a user box), clean (largest
components, floaters, holes, degenerate faces), decimate (to a detail preset's triangle budget),
placement (Y-up, centred, standing on y = 0, metric scale), uv (xatlas), bake (colour from the
posed photos into a texture atlas). ``recon.mesh.stage:STAGE`` runs them over a capture.
"""
