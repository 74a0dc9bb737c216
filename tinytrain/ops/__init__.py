"""Op kinds of imported models, one module each (see registry.py)."""
