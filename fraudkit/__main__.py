"""``python -m fraudkit``: the fraudkit command line."""

from fraudkit.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
