"""A minimal Hugging Face Hub on 127.0.0.1: exactly what ``huggingface_hub`` asks of it.

- ``HEAD|GET /{repo_id}/resolve/{rev}/{path}`` (``/datasets/{repo_id}/resolve/…`` for
  datasets): ``X-Repo-Commit``, ``ETag`` (git sha1, or the sha256 for LFS files),
  ``X-Linked-Etag`` / ``X-Linked-Size`` for LFS files, one ``Range`` on GET;
- ``GET /api/{models|datasets}/{repo_id}/revision/{rev}``: ``{"id", "sha", "siblings"}``;
- ``GET /api/{models|datasets}/{repo_id}/tree/{rev}[/{path}]?recursive=…``: the tree.

Errors answer like the Hub, with ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``, ``GatedRepo``). A gated repo answers 401 without a token and 403 to a
token not on its list. Faults: ``hub.fail_status = 500`` answers every request with that
status; ``hub.drop = True`` closes every connection without an answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeHub", "HubRepo", "git_blob_sha1"]

_RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)$")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub sends as the ETag of a non-LFS file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubRepo:
    """One repository: commits (sha -> files), refs (branch/tag -> sha), access."""

    repo_id: str
    repo_type: str = "model"
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    tokens: set[str] = field(default_factory=set)  # tokens granted access to a gated repo
    lfs_suffixes: tuple[str, ...] = (".safetensors", ".bin", ".onnx", ".parquet")
    lie_sha256: dict[str, str] = field(default_factory=dict)  # path -> sha256 announced instead of the real one

    def is_lfs(self, path: str) -> bool:
        """Whether ``path`` is stored with LFS (announced with its sha256)."""
        return path.endswith(self.lfs_suffixes)

    def sha256_of(self, path: str, data: bytes) -> str:
        """The LFS sha256 the Hub announces for ``path``."""
        return self.lie_sha256.get(path) or hashlib.sha256(data).hexdigest()

    def resolve(self, rev: str) -> str | None:
        """The commit a branch, tag or commit names."""
        if rev in self.refs:
            return self.refs[rev]
        if _COMMIT_RE.fullmatch(rev) and rev in self.commits:
            return rev
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # -- answers -----------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        hdrs = {"Content-Type": "text/plain", **(headers or {})}
        hdrs.setdefault("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(
            status,
            body,
            {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message, **(headers or {})},
        )

    def _json(self, doc: Any) -> None:
        self._send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})

    # -- routing -----------------------------------------------------------------------
    def _serve(self, head: bool) -> None:
        hub = self.server.owner
        split = urlsplit(self.path)
        with hub.lock:
            hub.requests.append((self.command, self.path, dict(self.headers.items())))
            fail_status, drop = hub.fail_status, hub.drop
        if drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fail_status is not None:
            self._send(fail_status, b"internal error")
            return
        parts = split.path.split("/")[1:]  # raw (still percent-encoded) segments
        if parts[:1] == ["api"] and len(parts) >= 6 and parts[1] in ("models", "datasets"):
            repo_type = parts[1][:-1]
            repo_id = f"{unquote(parts[2])}/{unquote(parts[3])}"
            action, rev, rest = parts[4], unquote(parts[5]), [unquote(p) for p in parts[6:]]
            query = parse_qs(split.query)
            if action == "revision" and not rest:
                self._api_revision(repo_type, repo_id, rev)
                return
            if action == "tree":
                recursive = query.get("recursive", ["False"])[0].lower() == "true"
                self._api_tree(repo_type, repo_id, rev, "/".join(rest), recursive)
                return
        else:
            repo_type = "model"
            if parts[:1] == ["datasets"]:
                repo_type, parts = "dataset", parts[1:]
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id = f"{unquote(parts[0])}/{unquote(parts[1])}"
                rev = unquote(parts[3])
                path = unquote("/".join(parts[4:]))
                self._resolve(repo_type, repo_id, rev, path, head)
                return
        self._send(404, b"not found")

    def _repo(self, repo_type: str, repo_id: str) -> HubRepo | None:
        """The repo, after access checks; ``None`` when an error was answered."""
        hub = self.server.owner
        repo = hub.repos.get((repo_type, repo_id))
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if repo.gated:
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
            if not token:
                self._error(
                    401,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in.",
                )
                return None
            if token not in repo.tokens:
                self._error(
                    403,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted and you are not in the authorized list. "
                    f"Visit https://huggingface.co/{repo_id} to ask for access.",
                )
                return None
        return repo

    def _commit(self, repo: HubRepo, rev: str) -> str | None:
        commit = repo.resolve(rev)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return commit

    def _api_revision(self, repo_type: str, repo_id: str, rev: str) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return
        commit = self._commit(repo, rev)
        if commit is None:
            return
        files = repo.commits[commit]
        self._json(
            {
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "sha": commit,
                "private": False,
                "gated": "manual" if repo.gated else False,
                "siblings": [{"rfilename": p} for p in sorted(files)],
            }
        )

    def _api_tree(self, repo_type: str, repo_id: str, rev: str, under: str, recursive: bool) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return
        commit = self._commit(repo, rev)
        if commit is None:
            return
        files = repo.commits[commit]
        prefix = f"{under}/" if under else ""
        if under and not any(p.startswith(prefix) for p in files):
            self._error(404, "EntryNotFound", f"{under} does not exist on {rev}")
            return
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix) :]
            if "/" in rel and not recursive:
                folders.add(prefix + rel.split("/", 1)[0])
                continue
            if recursive:
                segs = rel.split("/")[:-1]
                for i in range(1, len(segs) + 1):
                    folders.add(prefix + "/".join(segs[:i]))
            data = files[path]
            entry: dict[str, Any] = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
            if repo.is_lfs(path):
                entry["lfs"] = {"oid": repo.sha256_of(path, data), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        for folder in sorted(folders):
            oid = hashlib.sha1(folder.encode()).hexdigest()
            entries.append({"type": "directory", "oid": oid, "path": folder})
        self._json(entries)

    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str, head: bool) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return
        commit = self._commit(repo, rev)
        if commit is None:
            return
        data = repo.commits[commit].get(path)
        if data is None:
            self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit})
            return
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if repo.is_lfs(path):
            sha = repo.sha256_of(path, data)
            headers |= {"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))}
        else:
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
        status, body = 200, data
        rng = self.headers.get("Range")
        m = _RANGE_RE.match(rng.strip()) if rng and not head else None
        if m:
            start = int(m.group(1))
            end = min(len(data), int(m.group(2)) + 1) if m.group(2) else len(data)
            status, body = 206, data[start:end]
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        headers["Content-Length"] = str(len(body))
        self._send(status, body, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FakeHub


class FakeHub:
    """Start with ``FakeHub()``; ``endpoint``; ``add_repo(...)``; ``reset()``; ``close()``."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], HubRepo] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_status: int | None = None
        self.drop = False
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        repo_type: str = "model",
        branch: str = "main",
        tags: tuple[str, ...] = (),
        gated: bool = False,
        tokens: tuple[str, ...] = (),
    ) -> str:
        """Add (or add a commit to) a repo; returns the new commit's sha, which ``branch`` and ``tags`` name."""
        with self.lock:
            repo = self.repos.setdefault((repo_type, repo_id), HubRepo(repo_id, repo_type))
            repo.gated = gated
            repo.tokens = set(tokens)
            seed = json.dumps(
                [repo_id, len(repo.commits), sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items())]
            )
            commit = hashlib.sha1(seed.encode()).hexdigest()
            repo.commits[commit] = dict(files)
            for ref in (branch, *tags):
                repo.refs[ref] = commit
        return commit

    def repo(self, repo_id: str, repo_type: str = "model") -> HubRepo:
        """The stored repo (to tweak, e.g. ``lie_sha256``)."""
        return self.repos[(repo_type, repo_id)]

    def reset(self) -> None:
        """Forget repos, requests and faults."""
        with self.lock:
            self.repos.clear()
            self.requests.clear()
            self.fail_status = None
            self.drop = False

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
