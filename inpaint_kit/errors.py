"""The one exception type that the CLI turns into a one-line message and an exit code."""


class InpaintKitError(Exception):
    """A user-facing error: its message is one line that names the file or value and the fix."""

    exit_code = 2
