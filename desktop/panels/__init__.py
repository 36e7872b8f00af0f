"""The main window's panels; each talks to desktop.services through an AppContext."""
