"""Reconstruction stages over a capture folder: ingest, poses, fusion, mesh, texture, export."""
