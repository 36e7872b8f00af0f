"""MCC-style single-frame completion: one RGB-D view to a whole object (issue 13)."""
