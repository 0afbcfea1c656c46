"""The one exception type users see: a one-line message that says what is wrong and what to do."""


class DistillError(Exception):
    """Bad input or an impossible request; entry points print it as one line and exit 2."""
