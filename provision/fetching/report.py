"""What a fetch did, file by file, and the failure a file's attempts add up to.

Every source tried for a file leaves ``(url, AttemptFailed)`` in its result: the exception
itself, whose kind (:mod:`provision.sources.base`) decides the file's failure — all offline
refusals make an :class:`~provision.errors.OfflineError`, any wrong bytes an
:class:`~provision.errors.IntegrityError`, anything else a :class:`~provision.errors.SourceError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.config import redact_url
from provision.errors import IntegrityError, OfflineError, ProvisionError, SourceError
from provision.manifest.model import Artifact, FileSpec
from provision.sources.base import (
    AttemptFailed,
    IntegrityFailure,
    LocalMismatch,
    OfflineFailure,
    UnreachableFailure,
)
from provision.sources.manual import manual_instructions

__all__ = ["Attempt", "FetchReport", "FileResult", "file_failure", "no_source_reached", "shown_attempt"]

#: The ways out when no host can be reached from this machine.
WAYS_OUT = "bring the files with --from, set PROVISION_MIRRORS, or PROVISION_OFFLINE=1 to use the cache only"

#: One source tried for a file: where, and how it failed.
Attempt = tuple[str, AttemptFailed]


def shown_attempt(url: str, exc: AttemptFailed) -> Attempt:
    """The attempt as it is kept and shown: credentials in the URL and in the answer masked
    (:func:`~provision.config.redact_url`), the failure's kind and fields unchanged."""
    answer = redact_url(exc.answer)
    return redact_url(url), exc if answer == exc.answer else exc.retold(answer)


@dataclass
class FileResult:
    """What happened to one file; ``failure`` is set exactly when ``state`` is ``failed``."""

    artifact: str
    name: str
    state: str  # cached | fetched | linked | repaired | failed
    path: str
    bytes: int = 0
    source: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    extracted: str = ""  # the folder (or file) an archive was extracted to
    failure: ProvisionError | None = None
    manual: str = ""  # a licensed file a person must bring: what to download, where, and the command

    @property
    def unreachable(self) -> bool:
        """Failed, and every source tried for it could not be reached at all (no name, refused, no route)."""
        return not self.ok and bool(self.attempts) and all(isinstance(a, UnreachableFailure) for _, a in self.attempts)

    @property
    def ok(self) -> bool:
        """True unless the file failed."""
        return self.state != "failed"

    @property
    def error(self) -> str:
        """The one-line message of the failure ("" when the file is fine)."""
        return str(self.failure) if self.failure is not None else ""

    @property
    def exit_code(self) -> int:
        """The exit code of the failure (0 when the file is fine)."""
        return self.failure.exit_code if self.failure is not None else 0

    def fail(self, failure: ProvisionError) -> None:
        """Mark the file failed with ``failure``."""
        self.state, self.failure = "failed", failure

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: the fields of ``provision fetch --json``, each attempt as ``{"url", "answer"}``."""
        keys = ("artifact", "name", "state", "path", "bytes", "source", "error")
        doc: dict[str, Any] = {k: getattr(self, k) for k in keys}
        doc["attempts"] = [{"url": u, "answer": str(a)} for u, a in self.attempts]
        return doc


@dataclass
class FetchReport:
    """Every file of every artifact asked for, in manifest order."""

    files: list[FileResult] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> folder

    @property
    def ok(self) -> bool:
        """True when every file is in the cache and verified."""
        return all(f.ok for f in self.files)

    @property
    def failures(self) -> list[FileResult]:
        """The files that could not be fetched; those a person must bring by hand (``manual``) first."""
        bad = [f for f in self.files if not f.ok]
        return [f for f in bad if f.manual] + [f for f in bad if not f.manual]

    def error_lines(self) -> list[str]:
        """The one-line errors to show: each failed file's, the files to bring by hand first; when every
        other failure is a host that could not be reached at all, one line for all of them."""
        bad = self.failures
        manual = [f.error for f in bad if f.manual]
        rest = [f for f in bad if not f.manual]
        if len(rest) > 1 and all(f.unreachable for f in rest):
            return [*manual, _unreachable_line(rest)]
        return [*manual, *(f.error for f in rest)]

    @property
    def exit_code(self) -> int:
        """0, or the exit code of the first failure."""
        bad = self.failures
        return bad[0].exit_code if bad else 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: what ``provision fetch --json`` prints."""
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "artifacts": self.artifacts,
            "files": [f.to_json() for f in self.files],
        }

    def raise_for_errors(self) -> None:
        """Raise the first failure (its own type and fields), saying how many more failed."""
        bad = self.failures
        if not bad or bad[0].failure is None:
            return
        first = bad[0].failure
        lines = self.error_lines()
        if not bad[0].manual and len(lines) == 1 and len(bad) > 1:
            raise SourceError(lines[0], attempts=[a for f in bad for a in f.attempts])
        if len(bad) > 1:
            more = type(first).__new__(type(first))
            more.__dict__.update(first.__dict__)  # the error's own fields (path, attempts)
            more.args = (f"{bad[0].error} (and {len(bad) - 1} more failed)",)
            first = more
        raise first


def no_source_reached(attempts: Sequence[Attempt]) -> str:
    """``no source could be reached (name resolution failed for X, refused at Y); <the ways out>``."""
    phrases = dict.fromkeys(a.phrase for _, a in attempts if isinstance(a, UnreachableFailure))
    return f"no source could be reached ({_first(phrases)}); {WAYS_OUT}"


def _unreachable_line(files: Sequence[FileResult]) -> str:
    """One line for many files whose every source was unreachable: which files, which hosts, what to do."""
    counts: dict[str, int] = {}
    for f in files:
        counts[f.artifact] = counts.get(f.artifact, 0) + 1
    which = ", ".join(f"{art} ({n} file{'s' if n > 1 else ''})" for art, n in counts.items())
    return f"{which}: {no_source_reached([a for f in files for a in f.attempts])}"


def _local_mismatch(where: str, attempts: Sequence[Attempt], hint: str) -> IntegrityError:
    """The error when the file given with --from is not the expected one: it is blamed, not the upstream."""
    local = [(u, a) for u, a in attempts if isinstance(a, LocalMismatch)]
    others = [(u, a) for u, a in attempts if not isinstance(a, LocalMismatch)]
    blamed = "; ".join(f"{u}: {a}" for u, a in local)
    rest = f"; the other sources: {_tried(others)}" if others else ""
    return IntegrityError(
        f"{where}: the local file given with --from is not the expected one ({blamed}){rest}; bring the right "
        f"file, or leave it out of --from{hint}",
        path=local[0][0],
    )


def file_failure(
    art: Artifact,
    spec: FileSpec,
    attempts: Sequence[Attempt],
    *,
    manual_url: str,
    from_paths: Sequence[Path],
    path: str,
) -> ProvisionError:
    """The error of a file no source delivered, from the kinds of its attempts (never their text).

    ``manual_url``: the file's ``manual:`` URL, when it has one (a licensed file a person brings);
    ``path``: where the file belongs in the cache.
    """
    where = f"{art.name}/{spec.name}"
    tried = _tried(attempts)
    if manual_url and not attempts:
        if from_paths:
            size = f"{spec.size} bytes" if spec.size is not None else "any size"
            return SourceError(
                f"{where}: not found under {', '.join(map(str, from_paths))} "
                f"(looked for {spec.name!r} or a file of {size} with {spec.checksum}); "
                f"{manual_instructions(spec, manual_url, art.name)}"
            )
        return SourceError(manual_instructions(spec, manual_url, art.name))
    if attempts and all(isinstance(a, OfflineFailure) for _, a in attempts):
        return OfflineError(
            f"{where}: needed but PROVISION_OFFLINE=1 forbids the network (would try "
            f"{_first(u for u, _ in attempts)}); fetch it where there is a network "
            "and share the cache, or pass --from PATH",
            attempts=attempts,
        )
    hint = f"; or download it by hand: {manual_instructions(spec, manual_url, art.name)}" if manual_url else ""
    remote_integrity = any(isinstance(a, IntegrityFailure) and not isinstance(a, LocalMismatch) for _, a in attempts)
    if any(isinstance(a, LocalMismatch) for _, a in attempts) and not remote_integrity:
        return _local_mismatch(where, attempts, hint)
    if attempts and all(isinstance(a, UnreachableFailure) for _, a in attempts):
        return SourceError(f"{where}: {no_source_reached(attempts)}{hint}", attempts=attempts)
    if remote_integrity:
        return IntegrityError(
            f"{where}: no source delivered the expected data ({tried}); the file may have "
            f"been corrupted or replaced upstream, or the manifest checksum is outdated{hint}",
            path=path,
        )
    return SourceError(
        f"{where}: every source failed ({tried}); check the network or add a mirror{hint}", attempts=attempts
    )


#: How many URLs an error line names before it says "and N more" (every attempt is in ``--json``
#: and in ``FileResult.attempts``), and the longest answer of one source it shows: the line stays
#: readable (about 300 characters with the file and the next step, for short answers).
SHOWN_URLS = 3
ANSWER_CHARS = 180  # room for "checksum mismatch: expected sha256:…, got sha256:…"


def _first(items: Iterable[str], limit: int = SHOWN_URLS) -> str:
    """``a, b, c and N more``: at most ``limit`` of ``items``."""
    shown = list(items)
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def _tried(attempts: Sequence[Attempt]) -> str:
    """``url -> answer; …`` for the first :data:`SHOWN_URLS` attempts (answers cut at
    :data:`ANSWER_CHARS`), then ``and N more (all in --json)``."""
    parts = []
    for url, failure in attempts[:SHOWN_URLS]:
        answer = str(failure)
        parts.append(f"{url} -> {answer if len(answer) <= ANSWER_CHARS else answer[: ANSWER_CHARS - 1] + '…'}")
    rest = len(attempts) - len(parts)
    return "; ".join(parts) + (f"; and {rest} more (all in --json)" if rest else "")
