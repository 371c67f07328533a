"""Thin ZenML steps: each adapts artifacts to one call of the `trainer` core and logs metadata."""
