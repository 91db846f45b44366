"""Core: exceptions, configuration, tag names and the data's column names.

The bottom layer: every other subpackage may import it, and it imports none of them.
"""

__all__: list[str] = []
