"""3D Gaussian splatting: a pipeline stage (``splat``) that trains Gaussians on posed photos.

On CUDA gsplat rasterizes; on CPU / Apple MPS our own plain-torch rasterizer (recon.splat.raster)
does, over the same parameters (recon.splat.gaussians), so a model moves between the two.
"""
