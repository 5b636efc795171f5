"""Helpers for the settings sections: values that arrive from the environment as one string."""

from __future__ import annotations


def split_csv(value: object) -> object:
    """A comma-separated string as a list of its non-empty, stripped items; anything else as is."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value
