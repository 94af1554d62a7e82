"""config: Settings from an explicit env mapping, defaults, overrides."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

import provision
from provision.config import ENV_VARS, Settings, builtin_manifest_dir, default_cache_dir
from provision.errors import UsageError

REPO = Path(provision.__file__).resolve().parent.parent


def test_empty_env_gives_defaults() -> None:
    s = Settings.from_env({})
    assert s.cache_dir == default_cache_dir()
    assert s.manifest_dirs == ()
    assert s.jobs == 4
    assert s.offline is False
    assert s.debug is False
    assert s.lock_timeout == 1800.0
    assert s.connect_timeout == 15.0
    assert s.read_timeout == 60.0


def test_explicit_env_does_not_read_os_environ(tmp_path: Path) -> None:
    # The autouse fixture set PROVISION_CACHE in os.environ; an explicit env must win.
    assert os.environ["PROVISION_CACHE"] == str(tmp_path / "cache")
    s = Settings.from_env({"PROVISION_CACHE": str(tmp_path / "other")})
    assert s.cache_dir == tmp_path / "other"
    assert s.manifest_dirs == ()


def test_default_env_is_os_environ(tmp_path: Path) -> None:
    s = Settings.from_env()
    assert s.cache_dir == tmp_path / "cache"
    assert s.manifest_dirs == (tmp_path / "manifests",)


def test_cache_expands_user(tmp_path: Path) -> None:
    s = Settings.from_env({"PROVISION_CACHE": "~/mycache"})
    assert s.cache_dir == tmp_path / "home" / "mycache"


def test_manifests_split_on_pathsep(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    raw = os.pathsep.join([str(a), "", str(b), "~/m", str(c), ""])
    s = Settings.from_env({"PROVISION_MANIFESTS": raw})
    assert s.manifest_dirs == (a, b, tmp_path / "home" / "m", c)


def test_all_manifest_dirs_puts_builtin_first(tmp_path: Path) -> None:
    s = Settings.from_env({"PROVISION_MANIFESTS": str(tmp_path / "x")})
    assert s.all_manifest_dirs == (builtin_manifest_dir(), tmp_path / "x")


@pytest.mark.parametrize(("raw", "jobs"), [("1", 1), ("16", 16), (" 8 ", 8), ("", 4)])
def test_jobs(raw: str, jobs: int) -> None:
    s = Settings.from_env({"PROVISION_JOBS": raw})
    assert s.jobs == jobs
    assert isinstance(s.jobs, int)


@pytest.mark.parametrize("raw", ["four", "2.5", "0x4", "1e2"])
def test_jobs_not_an_integer(raw: str) -> None:
    with pytest.raises(UsageError) as info:
        Settings.from_env({"PROVISION_JOBS": raw})
    msg = str(info.value)
    assert "PROVISION_JOBS" in msg
    assert repr(raw) in msg
    assert "integer" in msg
    assert info.value.exit_code == 2


@pytest.mark.parametrize("raw", ["0", "-3"])
def test_jobs_not_positive(raw: str) -> None:
    with pytest.raises(UsageError, match="PROVISION_JOBS"):
        Settings.from_env({"PROVISION_JOBS": raw})


@pytest.mark.parametrize(
    ("var", "field"),
    [
        ("PROVISION_LOCK_TIMEOUT", "lock_timeout"),
        ("PROVISION_CONNECT_TIMEOUT", "connect_timeout"),
        ("PROVISION_READ_TIMEOUT", "read_timeout"),
    ],
)
def test_timeouts(var: str, field: str) -> None:
    assert getattr(Settings.from_env({var: "2.5"}), field) == 2.5
    assert getattr(Settings.from_env({var: "7"}), field) == 7.0
    for bad in ("soon", "0", "-1", "nan", "inf"):
        with pytest.raises(UsageError, match=var):
            Settings.from_env({var: bad})


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "Yes", "on", " 1 "])
def test_offline_and_debug_truthy(value: str) -> None:
    s = Settings.from_env({"PROVISION_OFFLINE": value, "PROVISION_DEBUG": value})
    assert s.offline is True
    assert s.debug is True


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "", "2", "enabled"])
def test_offline_and_debug_falsy(value: str) -> None:
    s = Settings.from_env({"PROVISION_OFFLINE": value, "PROVISION_DEBUG": value})
    assert s.offline is False
    assert s.debug is False


def test_overrides_win_over_env(tmp_path: Path) -> None:
    env = {"PROVISION_JOBS": "2", "PROVISION_OFFLINE": "0", "PROVISION_CACHE": str(tmp_path / "env")}
    s = Settings.from_env(env, jobs=9, offline=True, cache_dir=tmp_path / "cli")
    assert s.jobs == 9
    assert s.offline is True
    assert s.cache_dir == tmp_path / "cli"


def test_none_overrides_are_ignored(tmp_path: Path) -> None:
    env = {"PROVISION_JOBS": "3", "PROVISION_OFFLINE": "1", "PROVISION_CACHE": str(tmp_path / "env")}
    s = Settings.from_env(env, jobs=None, offline=None, cache_dir=None, read_timeout=None)
    assert s.jobs == 3
    assert s.offline is True
    assert s.cache_dir == tmp_path / "env"
    assert s.read_timeout == 60.0


def test_cache_dir_override_as_string_is_a_path() -> None:
    s = Settings.from_env({}, cache_dir="~/c")
    assert isinstance(s.cache_dir, Path)
    assert s.cache_dir == Path.home() / "c"


def test_with_rejects_jobs_below_one() -> None:
    s = Settings.from_env({})
    with pytest.raises(UsageError, match="--jobs"):
        s.with_(jobs=0)
    with pytest.raises(UsageError):
        Settings.from_env({}, jobs=-1)


def test_with_returns_new_frozen_copy() -> None:
    s = Settings.from_env({})
    t = s.with_(jobs=2)
    assert (s.jobs, t.jobs) == (4, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.jobs = 3  # type: ignore[misc]


def test_with_unknown_field_fails() -> None:
    with pytest.raises(TypeError):
        Settings.from_env({}, nonsense=1)


def test_default_cache_dir_in_checkout_is_repo_cache() -> None:
    assert (REPO / "pyproject.toml").is_file()
    assert (REPO / "cache").is_dir()
    assert default_cache_dir() == REPO / "cache"
    # Settings() without env falls back to the same default
    assert Settings().cache_dir == REPO / "cache"


def test_builtin_manifest_dir_exists() -> None:
    d = builtin_manifest_dir()
    assert d.is_dir()
    assert d == REPO / "manifests"
    assert sorted(p.name for p in d.glob("*.toml"))


def test_env_vars_documented() -> None:
    for var in (
        "PROVISION_CACHE",
        "PROVISION_MANIFESTS",
        "PROVISION_JOBS",
        "PROVISION_OFFLINE",
        "PROVISION_DEBUG",
        "PROVISION_LOCK_TIMEOUT",
        "PROVISION_CONNECT_TIMEOUT",
        "PROVISION_READ_TIMEOUT",
    ):
        assert ENV_VARS.get(var), var
