"""Reports: HTML pages of runs, the story index page and the read model it draws from."""

__all__: list[str] = []
