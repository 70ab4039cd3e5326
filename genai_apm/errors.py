"""The one exception type the CLI turns into a single line on stderr and a non-zero exit."""


class GenaiApmError(Exception):
    """A failure the user can act on; its message is the whole story, no traceback needed."""
