"""Display: what each logged name means (glossary), tables and plots.

Imports science (plots draw what metrics compute), never the reverse; no MLflow.
"""

__all__: list[str] = []
