"""``provision doctor [NAME]``: is this machine ready? One :class:`Check` per line: ok, warn, fail or skip.

Machine-level checks (always): the Python version and installed packages, write access and
lock enforcement on the cache's filesystem, free disk, GPU/CUDA visibility. With NAME (a
benchmark, dataset or model), also: the packages its recipes and validation need, the disk
its files, extractions and preprocessed outputs need beyond what is cached, whether each
source host answers, and whether the credentials its gated/members-only sources need are set.

Nothing here raises for a machine problem: a problem is a ``fail`` check with its fix. Tokens
are never read back out of :class:`~provision.config.Settings` into a message.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from .config import Settings
from .doctor_machine import (
    BASE_PACKAGES,
    EXTRA_PACKAGES,
    Check,
    Package,
    Status,
    check_cache,
    check_gpu,
    check_python,
    existing,
    filesystem_of,
    installed,
    package_check,
)
from .errors import ProvisionError
from .fetch import DISK_RESERVE, human_bytes
from .folders import expand
from .lockfile import LockFile
from .manifest import Artifact, Benchmark, Catalog, FileSpec
from .sources import new_session, scheme_of
from .sources.base import AttemptFailed
from .sources.r2 import r2_metadata_urls
from .store import Store
from .validation import default_model

__all__ = [
    "BASE_PACKAGES",
    "EXTRA_PACKAGES",
    "Check",
    "DoctorReport",
    "Package",
    "Status",
    "check_cache",
    "check_credentials",
    "check_disk",
    "check_gpu",
    "check_network",
    "check_packages",
    "check_python",
    "filesystem_of",
    "package_check",
    "run_doctor",
]


@dataclass
class DoctorReport:
    """Every check run; ``ok`` when none failed (warnings and skips do not fail)."""

    checks: list[Check]
    name: str | None = None
    cache_dir: str = ""

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(c.status != "fail" for c in self.checks)

    def counts(self) -> dict[str, int]:
        """How many checks have each status."""
        return {s: sum(1 for c in self.checks if c.status == s) for s in ("ok", "warn", "fail", "skip")}

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (holds no credential)."""
        return {
            "ok": self.ok,
            "name": self.name,
            "cache": self.cache_dir,
            "counts": self.counts(),
            "checks": [asdict(c) for c in self.checks],
        }


# -- packages -----------------------------------------------------------------------------------

_METRIC_PACKAGES = {"map": "pycocotools", "auc": "scikit-learn"}
_FORMAT_PACKAGES = {"onnx": "onnxruntime", "torchscript": "torch", "pytorch": "torch"}
_METRIC_ONLY = "metric-only"  # a metric provision implements but 'run' does not validate with


def _recipe_check(recipe_name: str, users: Sequence[str], *, required: bool) -> Check:
    import preprocess

    name = f"recipe {recipe_name}"
    try:
        recipe = preprocess.get(recipe_name)
        libraries = recipe.libraries()
    except KeyError:  # a limit of provision, not of this machine: fetch works, preprocess cannot
        why = "not implemented in this version of provision: 'fetch' works, 'preprocess' and 'run' cannot"
        return Check(name, "warn", f"{why}; used by {', '.join(users)}")
    except ImportError as exc:
        return Check(
            name,
            "fail" if required else "warn",
            f"cannot load: {exc}",
            "pip install --force-reinstall provision (a base dependency is missing or broken)",
        )
    versions = ", ".join(f"{k} {v}" for k, v in sorted(libraries.items()))
    return Check(name, "ok", f"{versions}; used by {', '.join(users)}")


def _needs(
    catalog: Catalog, entry: Artifact | Benchmark
) -> tuple[dict[str, tuple[list[str], bool]], dict[str, tuple[list[str], bool]]]:
    """``(packages, recipes)`` that ``entry`` needs: ``{dist or recipe: (purposes, required)}``.

    Required means that ``provision run``/``fetch`` of ``entry`` uses it; the other models of a
    benchmark (``--model``), and the runtimes and metrics of a benchmark that provision does not
    validate locally, are optional.
    """
    from .tasks import TASKS

    packages: dict[str, tuple[list[str], bool]] = {}
    recipes: dict[str, tuple[list[str], bool]] = {}

    def need(table: dict[str, tuple[list[str], bool]], key: str, why: str, required: bool) -> None:
        whys, req = table.get(key, ([], False))
        table[key] = ([*whys, why], req or required)

    models: list[tuple[Artifact, bool]] = []
    if isinstance(entry, Benchmark):
        default = default_model(catalog, entry)
        models = [(catalog.artifacts[m], m == default) for m in entry.models]
        own = catalog.artifacts[default].preprocess if default else None
        if entry.preprocess is not None:
            need(recipes, entry.preprocess.recipe, entry.name, own is None)
        for art, is_default in models:
            if art.preprocess is not None:
                need(recipes, art.preprocess.recipe, art.name, is_default)
        validated = entry.accuracy is not None and entry.accuracy.metric in TASKS
        models = [(art, required and validated) for art, required in models]
        for metric in entry.metrics:
            name = metric.metric.lower()
            dist = "rouge-score" if name.startswith("rouge") else _METRIC_PACKAGES.get(name)
            if dist:
                local = validated and metric is entry.accuracy
                need(packages, dist, f"{'metric' if local else _METRIC_ONLY} {metric.metric}", local)
        arts = [catalog.artifacts[a] for a in entry.artifact_names]
    else:
        models = [(entry, True)] if entry.kind == "model" else []
        arts = [entry]
    for art, required in models:
        dist = _FORMAT_PACKAGES.get(art.format or "")
        if dist:
            need(packages, dist, f"runs {art.name}", required)
        if art.runtime is not None and art.runtime.architecture:
            need(packages, "torchvision", f"builds {art.runtime.architecture} for {art.name}", required)
    if any(scheme_of(u) == "s3" for a in arts for f in a.files for u in f.urls):
        need(packages, "boto3", "s3:// sources", True)
    return packages, recipes


def _purposes(whys: Sequence[str]) -> str:
    """``["runs a", "runs b", "metric m"]`` -> ``"runs a, b; metric m"``."""
    groups: dict[str, list[str]] = {}
    for why in whys:
        verb, _, obj = why.partition(" ")
        groups.setdefault(verb, []).append(obj)
    return "; ".join(
        f"metric {', '.join(objs)} (not validated by 'run')" if verb == _METRIC_ONLY else f"{verb} {', '.join(objs)}"
        for verb, objs in groups.items()
    )


def check_packages(catalog: Catalog, entry: Artifact | Benchmark | None = None) -> list[Check]:
    """Base packages; with ``entry`` what its recipes and validation need, else every optional extra."""
    missing = [p for p in BASE_PACKAGES if not installed(p)[0]]
    if missing:
        base = Check(
            "packages",
            "fail",
            "missing: " + ", ".join(p.dist for p in missing),
            "pip install --force-reinstall provision",
        )
    else:
        base = Check("packages", "ok", f"{len(BASE_PACKAGES)} base dependencies installed")
    checks = [base]
    if entry is None:
        checks += [package_check(p, f"optional: {p.purpose}", required=False) for p in EXTRA_PACKAGES.values()]
        return checks
    packages, recipes = _needs(catalog, entry)
    checks += [_recipe_check(name, users, required=req) for name, (users, req) in recipes.items()]
    checks += [package_check(EXTRA_PACKAGES[d], _purposes(why), required=req) for d, (why, req) in packages.items()]
    return checks


# -- disk ------------------------------------------------------------------------------------------


def _resolved(art: Artifact, settings: Settings) -> Artifact:
    """``art`` with its pinned folder listings (no network)."""
    lock = LockFile(settings.lock_path)
    return lock.apply(expand(art, lock))


def _artifacts(catalog: Catalog, entry: Artifact | Benchmark, settings: Settings) -> list[Artifact]:
    return [_resolved(a, settings) for a in catalog.resolve([entry.name])]


def _item_bytes(recipe: str, params: Any) -> int | None:
    """Estimated output bytes per item of ``recipe`` (float32 images, int32 BERT features); None if unknown."""
    try:
        if recipe in ("imagenet-resnet50", "imagenet-torchvision"):
            crop = int(params.get("crop", 224))
            return crop * crop * 3 * 4
        if recipe == "openimages-retinanet":
            height, width = (int(v) for v in params.get("resize", [800, 800]))
            return height * width * 3 * 4
        if recipe == "squad-bert":
            return int(params.get("max_seq_length", 384)) * 3 * 4
    except (TypeError, ValueError):
        return None
    return None


def _preprocessed_need(catalog: Catalog, settings: Settings, bench: Benchmark) -> tuple[int, str]:
    """Bytes ``provision run`` will write as preprocessed outputs (0 when already made), and how it was found."""
    from .preprocessing import make_plan, preprocessed_path

    default = default_model(catalog, bench)
    spec = (catalog.artifacts[default].preprocess if default else None) or bench.preprocess
    if spec is None:
        return 0, ""
    try:  # a short lock timeout: a fetch in progress elsewhere must not stall the doctor
        plan = make_plan(catalog, bench.name, settings.with_(lock_timeout=1.0), model=default)
        preprocessed_path(plan)
        return 0, "preprocessed: in the cache"
    except (ProvisionError, OSError, ImportError):  # not fetched / not made / a recipe library missing
        pass
    per = _item_bytes(spec.recipe, spec.params)
    if per is None or bench.dataset_size is None:
        return 0, f"preprocessed ({spec.recipe}): no estimate"
    total = per * bench.dataset_size
    return total, f"preprocessed ~{human_bytes(total)} (estimate: {bench.dataset_size:,} x {human_bytes(per)})"


def check_disk(catalog: Catalog, settings: Settings, entry: Artifact | Benchmark | None = None) -> Check:
    """Free space on the cache's filesystem vs what ``entry`` still needs there (downloads, extraction, outputs)."""
    from .unpack import tree_ok

    folder = existing(settings.cache_dir)
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return Check("disk", "fail", f"cannot read free space of {folder}: {exc.strerror or exc}")
    if entry is None:
        status: Status = "ok" if free > DISK_RESERVE else "warn"
        return Check(
            "disk",
            status,
            f"{human_bytes(free)} free in {folder}",
            "" if status == "ok" else "free space ('provision gc') or use a bigger disk",
        )
    store = Store(settings.cache_dir)
    download = extracted = cached = unknown = unknown_extract = 0
    for art in _artifacts(catalog, entry, settings):
        usage = store.usage(art)
        cached += usage["bytes"]
        complete = usage["state"] == "present"
        for spec in art.files:
            if not (complete or _file_here(store, art, spec)):
                download += spec.size or 0
                unknown += spec.size is None
            if spec.extract is not None and not (complete and tree_ok(store, art, spec)):
                extracted += spec.extract.extracted_size or 0
                unknown_extract += spec.extract.extracted_size is None
    parts = [f"download {human_bytes(download)}" + (f" + {unknown} file(s) of unknown size" if unknown else "")]
    if extracted or unknown_extract:
        parts.append(
            f"extracted {human_bytes(extracted)}"
            + (f" + {unknown_extract} archive(s) of unknown size" if unknown_extract else "")
        )
    preprocessed = 0
    if isinstance(entry, Benchmark):
        preprocessed, note = _preprocessed_need(catalog, settings, entry)
        if note:
            parts.append(note)
    needed = download + extracted + preprocessed
    detail = (
        f"{entry.name} needs {human_bytes(needed)} more ({', '.join(parts)}; "
        f"{human_bytes(cached)} already downloaded), {human_bytes(free)} free in {folder}"
    )
    if needed + DISK_RESERVE > free:
        return Check(
            "disk",
            "fail",
            f"not enough space: {detail} (plus a {human_bytes(DISK_RESERVE)} reserve)",
            "free space ('provision gc') or point --cache-dir / PROVISION_CACHE at a bigger disk",
        )
    return Check("disk", "ok", detail)


# -- network -----------------------------------------------------------------------------------------


@dataclass
class _Host:
    """One host to reach: the URL to HEAD and the files it can serve (by ``artifact/file``)."""

    url: str
    files: set[str] = field(default_factory=set)
    answer: str = ""
    reached: bool = False
    error: str = ""
    fix: str = ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"


_NET_FIX = "check DNS, routes and proxy settings (HTTPS_PROXY, NO_PROXY)"


def _reason(exc: requests.RequestException, timeout: float) -> tuple[str, str]:
    """A short description of why a HEAD failed, and the fix (never the URL's credentials)."""
    text = re.sub(r"//[^/@\s]+@", "//", str(exc))
    if isinstance(exc, requests.exceptions.SSLError):
        short = re.search(r"certificate verify failed: ([^(\"')]+)", text)
        return (
            f"TLS verification failed ({short.group(1).strip() if short else 'SSL error'})",
            "if a proxy intercepts TLS, point REQUESTS_CA_BUNDLE at its CA certificate (verification stays on)",
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy failed or refused the connection", "check HTTPS_PROXY / HTTP_PROXY and NO_PROXY"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {timeout:g} s", _NET_FIX
    for pattern, answer in (
        (
            r"NameResolution|Name or service not known|Temporary failure in name resolution|nodename nor servname",
            "cannot resolve the host name (no DNS or no network)",
        ),
        (r"Connection refused|Errno 111", "connection refused"),
        (r"Network is unreachable|No route to host", "network unreachable"),
        (r"Connection reset|RemoteDisconnected", "connection reset"),
    ):
        if re.search(pattern, text):
            return answer, _NET_FIX
    return f"{type(exc).__name__}", _NET_FIX


def _head(host: _Host, timeout: float) -> None:
    session = new_session()
    start = time.monotonic()
    try:
        resp = session.head(host.url, timeout=(timeout, timeout), allow_redirects=False)
        resp.close()
        host.reached = True
        host.answer = f"HTTP {resp.status_code} in {(time.monotonic() - start) * 1000:.0f} ms"
        if resp.status_code >= 500:
            host.error = f"answers HTTP {resp.status_code}"
    except requests.RequestException as exc:
        host.error, host.fix = _reason(exc, timeout)
    finally:
        session.close()


def _file_here(store: Store, art: Artifact, spec: FileSpec) -> bool:
    """Whether ``spec``'s bytes are in the cache already (its blob or its artifact file)."""
    if spec.is_folder:
        return False
    blob = spec.checksum.known and store.blob_path(spec.checksum).exists()
    return blob or (store.artifact_dir(art.name) / spec.name).exists()


def check_network(
    arts: Sequence[Artifact], settings: Settings, *, network: bool = True, timeout: float = 3.0
) -> list[Check]:
    """HEAD each source host of ``arts`` (and each mirror) once: one line per host; manual sources skip."""
    store = Store(settings.cache_dir)
    hosts: dict[str, _Host] = {}
    checks: list[Check] = []
    needed: set[str] = set()
    s3 = False
    for art in arts:
        for spec in art.files:
            key = f"{art.name}/{spec.name}"
            here = _file_here(store, art, spec)
            if not here:
                needed.add(key)
            urls = [f"{m}/{spec.checksum.alg}/{spec.checksum.hex}" for m in settings.mirrors if spec.checksum.known]
            for url in [*urls, *spec.urls]:
                scheme = scheme_of(url)
                if scheme == "manual":
                    status: Status = "ok" if here else "skip"
                    detail = "in the cache" if here else "licensed: bring the file with --from"
                    where = url.removeprefix("manual:")
                    checks.append(Check(f"manual {art.name}", status, f"{spec.name}: {detail} ({where})"))
                    continue
                if scheme == "s3":
                    s3 = True
                    continue
                if scheme in ("hf", "hf-dataset"):
                    url = settings.hf_endpoint.rstrip("/") + "/"
                elif scheme == "mlc-r2":
                    try:
                        url = r2_metadata_urls(url)[0]
                    except AttemptFailed:
                        continue
                elif scheme not in ("http", "https"):
                    continue  # file:// and plain paths need no network
                hosts.setdefault(_origin(url), _Host(url)).files.add(key)
    if s3:
        checks.append(Check("reach s3", "skip", "s3:// endpoints and credentials come from boto3's own configuration"))
    if not hosts:
        return checks
    if settings.offline or not network:
        why = "offline (PROVISION_OFFLINE=1)" if settings.offline else "not checked (--no-network)"
        for origin, host in hosts.items():
            todo = len(host.files & needed)
            name = f"reach {origin.split('://')[1]}"
            if todo and settings.offline:
                # Offline with files still to fetch: not ready until they are brought another way.
                checks.append(
                    Check(
                        name,
                        "warn",
                        f"{why}; {todo} file(s) not cached come from here",
                        "bring them with 'provision fetch NAME --from <file or folder>' or a PROVISION_MIRRORS mirror",
                    )
                )
            else:
                checks.append(Check(name, "skip", why))
        return checks
    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        list(pool.map(lambda h: _head(h, timeout), hosts.values()))
    reachable = {f for h in hosts.values() if h.reached and not h.error for f in h.files}
    offline = not any(h.reached for h in hosts.values())
    for origin, host in hosts.items():
        name = f"reach {origin.split('://')[1]}"
        if host.reached and not host.error:
            how = "TLS verified" if origin.startswith("https") else "plain http: bytes checked against the checksum"
            checks.append(Check(name, "ok", f"{host.answer} ({origin}, {how})"))
            continue
        what = host.error + (f" ({host.answer})" if host.answer else "")
        stuck = sorted(f for f in host.files & needed if f not in reachable)
        fix = "" if offline else host.fix
        if not stuck:
            rest = "its files are cached" if not host.files & needed else "its files have other reachable sources"
            checks.append(Check(name, "warn", f"{what}; {rest}", fix))
        else:
            more = f" and {len(stuck) - 2} more" if len(stuck) > 2 else ""
            checks.append(Check(name, "fail", f"{what}; no reachable source for {', '.join(stuck[:2])}{more}", fix))
    if offline:
        # Offline only matters when something is still to fetch: a fully cached NAME is ready.
        waiting = any(host.files & needed for host in hosts.values())
        checks.append(
            Check(
                "network",
                "fail" if waiting else "warn",
                f"none of {len(hosts)} host(s) answered: this machine looks offline"
                + ("" if waiting else " (everything NAME needs is cached)"),
                f"{_NET_FIX}; on an air-gapped machine bring files with --from (or PROVISION_MIRRORS) and set "
                "PROVISION_OFFLINE=1 (the doctor then skips these checks)",
            )
        )
    return checks


# -- credentials --------------------------------------------------------------------------------------

_R2_FIX = (
    "export CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET (an MLCommons service token), or "
    "PROVISION_R2_TOKEN=$(cloudflared access token --app={url}); request access from MLCommons first"
)


def _hf_page(url: str, endpoint: str) -> str:
    from .sources.hf import parse_hf_url

    try:
        ref = parse_hf_url(url, listing=True)
    except AttemptFailed:
        return endpoint
    return f"{endpoint}/{'datasets/' if ref.repo_type == 'dataset' else ''}{ref.repo_id}"


def _credential(art: Artifact, settings: Settings) -> Check | None:
    """The credential check of one artifact (None when it needs none)."""
    name = f"credentials {art.name}"
    endpoint = settings.hf_endpoint.rstrip("/")
    hf_hosts = {"huggingface.co", (urlsplit(endpoint).hostname or "").lower()}
    for url in (u for f in art.files for u in f.urls):
        scheme = scheme_of(url)
        host = (urlsplit(url).hostname or "").lower()
        if scheme == "s3":
            return Check(name, "skip", "s3: boto3's own credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, roles)")
        if art.access == "gated" and (scheme in ("hf", "hf-dataset") or host in hf_hosts):
            present = bool(settings.hf_token or settings.headers_for(host or "huggingface.co").get("Authorization"))
            if present:
                return Check(name, "ok", "gated Hub repository: HF_TOKEN present (not shown)")
            page = _hf_page(url, endpoint) if scheme != "https" else url.split("/resolve/")[0]
            return Check(
                name,
                "fail",
                "gated Hub repository and HF_TOKEN is not set",
                f"accept the licence on {page}, then export HF_TOKEN=<a read token from {endpoint}/settings/tokens>",
            )
        if art.access == "members" and (scheme == "mlc-r2" or host.endswith("mlcommons-storage.org")):
            r2_host = host
            if scheme == "mlc-r2":
                with contextlib.suppress(AttemptFailed):
                    r2_host = urlsplit(r2_metadata_urls(url)[0]).hostname or host
            keys = {k.lower() for k in settings.headers_for(r2_host)}
            if {"cf-access-client-id", "cf-access-client-secret"} <= keys or "cf-access-token" in keys:
                return Check(name, "ok", f"MLCommons R2 ({r2_host}): Cloudflare Access credentials present (not shown)")
            return Check(
                name,
                "fail",
                f"MLCommons Members only ({r2_host}) and no R2 credentials are set",
                _R2_FIX.format(url=f"https://{r2_host}"),
            )
        if art.access in ("gated", "members") and scheme in ("http", "https"):
            if settings.headers_for(host):
                return Check(name, "ok", f"{art.access}: credentials for {host} present (not shown)")
            return Check(
                name,
                "fail",
                f"{art.access} and no token is configured for {host}",
                f'add [hosts."{host}"] with a token to the auth file (PROVISION_AUTH_FILE, default '
                "~/.config/provision/auth.toml)",
            )
    return None


def check_credentials(arts: Sequence[Artifact], settings: Settings) -> list[Check]:
    """For each gated / members-only / s3 artifact: are its credentials set? Never shows them."""
    store = Store(settings.cache_dir)
    checks: list[Check] = []
    for art in arts:
        check = _credential(art, settings)
        if check is None:
            continue
        if check.status == "fail" and store.usage(_resolved(art, settings))["state"] == "present":
            check = Check(check.name, "ok", "in the cache; no credentials needed now")
        checks.append(check)
    return checks or [Check("credentials", "ok", "no token needed (public sources, or files brought with --from)")]


# -- the report --------------------------------------------------------------------------------------------


def _guard(name: str, run: Callable[[], Iterable[Check] | Check]) -> list[Check]:
    """Run one group of checks; an exception becomes a failed check, not a crash of the doctor."""
    try:
        out = run()
    except ProvisionError as exc:  # its message already says what to do
        return [Check(name, "fail", str(exc))]
    except Exception as exc:
        return [
            Check(
                name,
                "fail",
                f"the check itself failed: {type(exc).__name__}: {exc}",
                "rerun with PROVISION_DEBUG=1 and report it",
            )
        ]
    return [out] if isinstance(out, Check) else list(out)


def run_doctor(
    catalog: Catalog, settings: Settings, name: str | None = None, *, network: bool = True, timeout: float = 3.0
) -> DoctorReport:
    """Check this machine, and with ``name`` (benchmark, dataset or model) what that needs; see the module doc.

    :class:`~provision.errors.UnknownNameError` for an unknown ``name``; machine problems are
    ``fail`` checks, never exceptions. ``network=False`` (or ``settings.offline``) skips the HEAD
    requests; ``timeout`` bounds each (connect and read, seconds).
    """
    entry = catalog.get(name) if name is not None else None
    checks = [check_python()]
    checks += _guard("packages", lambda: check_packages(catalog, entry))
    checks += _guard("cache", lambda: check_cache(settings))
    checks += _guard("disk", lambda: check_disk(catalog, settings, entry))
    if entry is not None:
        arts = _artifacts(catalog, entry, settings)
        checks += _guard("network", lambda: check_network(arts, settings, network=network, timeout=timeout))
        checks += _guard("credentials", lambda: check_credentials([catalog.artifacts[a.name] for a in arts], settings))
    checks += _guard("gpu", lambda: check_gpu(timeout))
    return DoctorReport(checks, entry.name if entry is not None else None, str(settings.cache_dir))
