"""Runner: notebook parameters, papermill execution on the kit's kernel, the pipeline."""

__all__: list[str] = []
