"""The package version (a leaf module, so every stage may import it)."""
__version__ = "0.1.0"
