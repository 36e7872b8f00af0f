"""Qt-free foundation: capture folder, workspace, jobs and progress, settings, the error tree."""
