"""The one exception tree of provision.

Every error the library raises on purpose is a :class:`ProvisionError`. Each class
carries the process exit code the CLI uses for it, and each message is one line:
what failed, where, expected vs got, and the next step.

Low-level exceptions (``requests``, ``OSError``, ``tomllib``) are translated at the
boundary with ``raise Mapped(...) from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "EXIT_ACCURACY",
    "EXIT_FAILURE",
    "EXIT_INTEGRITY",
    "EXIT_MANIFEST",
    "EXIT_OK",
    "EXIT_SOURCE",
    "EXIT_USAGE",
    "AccuracyError",
    "DiskSpaceError",
    "IntegrityError",
    "LockTimeoutError",
    "ManifestError",
    "MissingDependencyError",
    "ModelError",
    "NotFetchedError",
    "OfflineError",
    "ProvisionError",
    "SourceError",
    "UnknownNameError",
    "UsageError",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTEGRITY = 3
EXIT_SOURCE = 4
EXIT_ACCURACY = 5
EXIT_MANIFEST = 6


class ProvisionError(Exception):
    """Base of every error provision raises on purpose; ``exit_code`` is its CLI status."""

    exit_code: int = EXIT_FAILURE


class UsageError(ProvisionError, ValueError):
    """The caller asked for something that cannot be done as asked (bad option, bad name)."""

    exit_code = EXIT_USAGE


class UnknownNameError(UsageError, KeyError):
    """A dataset/model/benchmark name that no manifest defines."""

    def __init__(self, name: str, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        hint = (
            f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?"
            if self.suggestions
            else "; run 'provision list' to see what is defined"
        )
        super().__init__(f"unknown name {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class IntegrityError(ProvisionError):
    """Data does not match what the manifest promises (checksum, size, missing file)."""

    exit_code = EXIT_INTEGRITY

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class NotFetchedError(IntegrityError, FileNotFoundError):
    """An artifact or file is not (completely) in the cache."""


class SourceError(ProvisionError, ConnectionError):
    """Every source for a file failed; ``attempts`` lists ``(url, exception)``, each source's own failure
    (a :class:`provision.sources.base.AttemptFailed` whose kind says what happened)."""

    exit_code = EXIT_SOURCE

    def __init__(self, message: str, *, attempts: Sequence[tuple[str, Exception]] = ()) -> None:
        super().__init__(message)
        self.attempts = list(attempts)


class OfflineError(SourceError):
    """A network access was needed while ``PROVISION_OFFLINE=1``."""


class AccuracyError(ProvisionError):
    """Measured accuracy is below the manifest's target."""

    exit_code = EXIT_ACCURACY


class MissingDependencyError(UsageError, ImportError):
    """An optional library a step needs is not installed; the message names the extra to install."""

    def __init__(self, library: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs {library}, which is not installed: pip install 'provision[{extra}]'"
        )
        self.library = library
        self.extra = extra


class ModelError(ProvisionError):
    """A model could not be loaded or run (wrong format, input names, shapes, architecture)."""


class ManifestError(ProvisionError, ValueError):
    """A manifest is malformed; ``problems`` holds every one-line problem found."""

    exit_code = EXIT_MANIFEST

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "manifest error"
        more = f" (and {len(self.problems) - 1} more; run 'provision lint')" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class DiskSpaceError(ProvisionError, OSError):
    """Not enough free disk space for what is about to be downloaded."""


class LockTimeoutError(ProvisionError, TimeoutError):
    """Another process held an artifact lock for longer than the lock timeout."""
