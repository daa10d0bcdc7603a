"""The exception types that the CLI turns into a one-line message and an exit code."""


class InpaintKitError(Exception):
    """A user-facing error: its message is one line that names the file or value and the fix."""

    exit_code = 2


UserError = InpaintKitError  # the name the developers' guide uses


class UsageError(InpaintKitError):
    """A flag or value that cannot work (wrong engine, out of range, impossible combination)."""


class OutputError(InpaintKitError):
    """An output location that cannot be written, or an existing output made with other settings."""
