"""Prefect flows that compose the building blocks in `tasks/`, and the command line."""
