"""How `lorag` fails: one readable line on stderr and an exit code, never a traceback unless `--verbose`.

Exit codes: 2 for bad input — a missing or malformed file, a bad option or setting, an unknown name — and
1 for an operation that was refused or could not be done now (a gate said no, another refresh holds the
lock, there is no index yet, a server could not be reached). Anything else is a bug in lorag and keeps its
traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer vendors its own click (typer._click) since 0.2x; older releases use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

NO_ARGS_IS_HELP: Any = getattr(click_exceptions, "NoArgsIsHelpError", ())
"""`lorag train` without a subcommand shows the group's help (click >= 8.2 raises this for it)."""

BAD_INPUT = 2
REFUSED = 1
MAX_LINES = 3
"""A message of several lines (a file's problems, one per line) shows this many, then how many more."""


def exit_code(exc: BaseException) -> int | None:
    """`BAD_INPUT`, `REFUSED`, or None for an exception that is not the user's to act on (a bug)."""
    from retrieval.errors import CorpusNotFoundError, RetrievalError
    from training.docs.errors import DocsDataError, NoUsableDocumentsError, ReviewFileError
    from training.registry import AdapterNotFoundError

    if isinstance(exc, CorpusNotFoundError | AdapterNotFoundError | NoUsableDocumentsError | ReviewFileError):
        return BAD_INPUT
    if isinstance(exc, DocsDataError):  # the teacher failed, wrote junk, or would go over its call cap
        return REFUSED
    if isinstance(exc, click_exceptions.UsageError | ValueError | UnicodeError) or _is_yaml_error(exc):
        return BAD_INPUT
    if isinstance(exc, RetrievalError):  # no index yet, another writer, a gate: the state, not the input
        return REFUSED
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError):
        return BAD_INPUT  # a path the user gave that is not there, or not readable
    if isinstance(exc, RuntimeError | LookupError | OSError) or _is_client_error(exc):
        return REFUSED
    return None


def describe(exc: BaseException) -> str:
    """The exception as one line: a file error names the file, a validation error each field."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {(exc.strerror or str(exc)).lower()}"
    mark = getattr(exc, "problem_mark", None)
    if _is_yaml_error(exc) and mark is not None:  # YAML's own message spans several lines
        return f"{mark.name}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {getattr(exc, 'problem', exc)}"
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":  # pydantic's: settings, recipes
        fields = [_field_error(error) for error in errors()]
        return one_line([f"{getattr(exc, 'title', 'settings')}: {len(fields)} invalid value(s)", *fields])
    if isinstance(exc, LookupError) and exc.args:
        return one_line(str(exc.args[0]))
    return one_line(str(exc) or type(exc).__name__)


def one_line(text: str | Sequence[str]) -> str:
    """Lines joined with `; `, at most `MAX_LINES` of them and a count of the rest."""
    lines = [line.strip() for line in (text.splitlines() if isinstance(text, str) else text) if line.strip()]
    shown = lines[:MAX_LINES]
    more = f"; … {len(lines) - MAX_LINES} more (--verbose shows all)" if len(lines) > MAX_LINES else ""
    return "; ".join(shown) + more


def _field_error(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ())) or "value"
    return f"{location}: {error.get('msg', 'invalid')}"


def _is_yaml_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("yaml")


def _is_client_error(exc: BaseException) -> bool:
    """httpx's and openai's transport and API errors: a server that could not be reached or said no."""
    return type(exc).__module__.split(".")[0] in ("httpx", "openai")


def _verbose() -> bool:
    return logging.getLogger().isEnabledFor(logging.DEBUG)


class LoragGroup(TyperGroup):
    """The root command: turns user errors from any subcommand into one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click_exceptions.ClickException):
            raise  # exits, and usage errors: `main` shows those
        except Exception as exc:
            code = exit_code(exc)
            if code is None or _verbose():
                raise
            typer.echo(f"error: {describe(exc)}", err=True)
            raise typer.Exit(code) from None

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except NO_ARGS_IS_HELP as exc:
            exc.show()  # `lorag train`, `lorag index`: the group's help, as with --help
            code = BAD_INPUT
        except click_exceptions.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            typer.echo(f"error: {exc.format_message()}{where}", err=True)
            code = BAD_INPUT
        except click_exceptions.ClickException as exc:
            typer.echo(f"error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("aborted", err=True)
            code = REFUSED
        if standalone_mode:
            sys.exit(code)
        return code
