"""Videos of a result: camera paths, a software renderer of the textured mesh, and H.264 MP4 output."""
