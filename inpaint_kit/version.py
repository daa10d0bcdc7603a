"""The package version, in a module of its own so that modules can read it without importing the package's
lazy API (inpaint_kit/__init__.py -> api -> inpaint would be a circle)."""

__version__ = "0.1.0"
