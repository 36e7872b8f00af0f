"""Gen-1-style restyling of a capture's frames: stylize and mask modes, cross-frame attention and
depth/pose warping for temporal consistency, MP4 output; the ``restyle`` stage and CLI command."""
