"""Diffusion restyling of captures and reconstructions."""
