"""errors: exit codes, builtin bases and messages of the one exception tree."""

from __future__ import annotations

import pytest

from provision import errors
from provision.errors import (
    AccuracyError,
    DiskSpaceError,
    IntegrityError,
    LockTimeoutError,
    ManifestError,
    MissingDependencyError,
    ModelError,
    NotFetchedError,
    OfflineError,
    ProvisionError,
    SourceError,
    UnknownNameError,
    UsageError,
)
from provision.sources.base import ConnectionFailure, OfflineFailure, StatusFailure


def test_exit_code_constants() -> None:
    assert (
        errors.EXIT_OK,
        errors.EXIT_FAILURE,
        errors.EXIT_USAGE,
        errors.EXIT_INTEGRITY,
        errors.EXIT_SOURCE,
        errors.EXIT_ACCURACY,
        errors.EXIT_MANIFEST,
    ) == (0, 1, 2, 3, 4, 5, 6)


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (ProvisionError, 1),
        (UsageError, 2),
        (UnknownNameError, 2),
        (IntegrityError, 3),
        (NotFetchedError, 3),
        (SourceError, 4),
        (OfflineError, 4),
        (AccuracyError, 5),
        (ManifestError, 6),
        (MissingDependencyError, 2),
        (ModelError, 1),
        (DiskSpaceError, 1),
        (LockTimeoutError, 1),
    ],
)
def test_exit_code_per_class(cls: type[ProvisionError], code: int) -> None:
    assert cls.exit_code == code


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (UsageError, (ProvisionError, ValueError)),
        (UnknownNameError, (UsageError, ValueError, KeyError)),
        (IntegrityError, (ProvisionError,)),
        (NotFetchedError, (IntegrityError, FileNotFoundError, OSError)),
        (SourceError, (ProvisionError, ConnectionError, OSError)),
        (OfflineError, (SourceError, ConnectionError)),
        (AccuracyError, (ProvisionError,)),
        (ManifestError, (ProvisionError, ValueError)),
        (DiskSpaceError, (ProvisionError, OSError)),
        (LockTimeoutError, (ProvisionError, TimeoutError)),
    ],
)
def test_inherits_matching_builtins(cls: type[ProvisionError], bases: tuple[type[BaseException], ...]) -> None:
    for base in bases:
        assert issubclass(cls, base), f"{cls.__name__} should subclass {base.__name__}"
    assert issubclass(cls, ProvisionError)


def test_integrity_error_is_not_a_value_error() -> None:
    # An integrity failure must not be swallowed by a caller's `except ValueError`.
    assert not issubclass(IntegrityError, ValueError)
    assert not issubclass(AccuracyError, ValueError)


def test_every_name_in_all_exists() -> None:
    assert errors.__all__
    for name in errors.__all__:
        assert hasattr(errors, name), name
    # and every public class of the module is exported
    public = {
        n
        for n, v in vars(errors).items()
        if isinstance(v, type) and issubclass(v, BaseException) and v.__module__ == errors.__name__
    }
    assert public <= set(errors.__all__)


def test_unknown_name_error_with_suggestions() -> None:
    exc = UnknownNameError("resnt50", ["resnet50", "resnet"])
    assert str(exc) == "unknown name 'resnt50'; did you mean 'resnet50', 'resnet'?"
    assert exc.name == "resnt50"
    assert exc.suggestions == ["resnet50", "resnet"]
    assert exc.exit_code == 2


def test_unknown_name_error_without_suggestions() -> None:
    exc = UnknownNameError("zzz")
    assert str(exc) == "unknown name 'zzz'; run 'provision list' to see what is defined"
    assert exc.suggestions == []


def test_unknown_name_error_caught_as_key_error_is_not_quoted() -> None:
    with pytest.raises(KeyError) as info:
        raise UnknownNameError("abc", ("abd",))
    # KeyError.__str__ would wrap the message in quotes
    assert str(info.value).startswith("unknown name 'abc'")


def test_manifest_error_single_problem() -> None:
    exc = ManifestError(["a.toml: dataset 'x': missing required key 'name'"])
    assert str(exc) == "a.toml: dataset 'x': missing required key 'name'"
    assert exc.problems == ["a.toml: dataset 'x': missing required key 'name'"]
    assert exc.exit_code == 6


def test_manifest_error_many_problems() -> None:
    exc = ManifestError(("one", "two", "three"))
    assert exc.problems == ["one", "two", "three"]
    assert str(exc) == "one (and 2 more; run 'provision lint')"


def test_manifest_error_empty() -> None:
    exc = ManifestError([])
    assert exc.problems == []
    assert str(exc) == "manifest error"


def test_integrity_error_path() -> None:
    exc = IntegrityError("checksum mismatch", path="/c/x.bin")
    assert str(exc) == "checksum mismatch"
    assert exc.path == "/c/x.bin"
    assert IntegrityError("m").path is None


def test_not_fetched_error_message_and_path() -> None:
    exc = NotFetchedError("not in the cache; run 'provision fetch x'", path="/c/x")
    assert str(exc) == "not in the cache; run 'provision fetch x'"
    assert exc.path == "/c/x"
    with pytest.raises(FileNotFoundError):
        raise exc


def test_source_error_attempts() -> None:
    """A SourceError keeps each source's own exception (its kind and fields), not only its text."""
    not_found = StatusFailure("HTTP 404 Not Found", 404)
    timeout = ConnectionFailure("timed out connecting")
    exc = SourceError("all sources failed", attempts=[("https://a/x", not_found), ("https://b/x", timeout)])
    assert str(exc) == "all sources failed"
    assert exc.attempts == [("https://a/x", not_found), ("https://b/x", timeout)]
    assert exc.attempts[0][1].status == 404  # type: ignore[attr-defined]
    assert SourceError("m").attempts == []
    refused = OfflineFailure()
    off = OfflineError("offline", attempts=(("https://a", refused),))
    assert off.attempts == [("https://a", refused)]
    with pytest.raises(ConnectionError):
        raise off


@pytest.mark.parametrize("cls", [AccuracyError, DiskSpaceError, LockTimeoutError, UsageError, ProvisionError])
def test_plain_message(cls: type[ProvisionError]) -> None:
    exc = cls("one line message")
    assert str(exc) == "one line message"
