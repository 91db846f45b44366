"""The click group every fraudkit command hangs from: errors to exit codes, one line each.

Exit codes: 0 ok, 1 user error (bad option, unknown experiment type or model, failed
notebook), 2 tracking store unreachable. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from fraudkit.core.exceptions import FraudkitError, TrackingUnavailableError

__all__ = ["EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USER_ERROR", "FraudkitGroup", "fail"]

EXIT_OK, EXIT_USER_ERROR, EXIT_UNREACHABLE = 0, 1, 2


def fail(message: str, code: int) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with ``code``."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class FraudkitGroup(click.Group):
    """A click group that maps fraudkit's errors to exit codes and one-line messages."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the group as click does, then exit with the code its outcome maps to."""
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            fail(f"{exc.format_message()}{hint}", EXIT_USER_ERROR)
        except click.Abort:
            fail("aborted", EXIT_USER_ERROR)
        except TrackingUnavailableError as exc:
            fail(str(exc), EXIT_UNREACHABLE)
        except FraudkitError as exc:
            fail(str(exc), EXIT_USER_ERROR)
        except Exception as exc:
            from mlflow.exceptions import MlflowException

            if not isinstance(exc, MlflowException):
                raise
            from fraudkit.core.config import tracking_uri
            from fraudkit.tracking.store import store_error

            error = store_error(exc, tracking_uri())
            code = EXIT_UNREACHABLE if isinstance(error, TrackingUnavailableError) else 1
            fail(str(error), code)
        sys.exit(result if isinstance(result, int) else EXIT_OK)
