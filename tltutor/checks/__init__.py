"""Checkers of the course notebooks' exercises: one module per notebook (``nb00``, ``nb01``, ...)."""
