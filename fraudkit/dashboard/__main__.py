"""``python -m fraudkit.dashboard ...``: the dashboard commands of the fraudkit CLI.

The only dashboard module that imports the CLI: the library never depends on its face.
"""

from fraudkit.cli.dashboard import dashboard

__all__: list[str] = []

if __name__ == "__main__":
    dashboard(prog_name="python -m fraudkit.dashboard")
