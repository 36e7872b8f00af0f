"""Data only: icons, the phone web page, presets, the sample capture."""
