"""Energy used during a measured run, from the counters the machine has: report, never guess.

- CPU: RAPL through the powercap sysfs tree (``/sys/class/powercap``), Intel and AMD alike
  (both register ``intel-rapl:N`` zones). Only top-level package zones are summed (see
  :func:`rapl_zones`); counters wrap at ``max_energy_range_uj`` and are sampled every
  ``interval`` seconds so that a long run cannot wrap twice unseen. Since Linux 5.10
  ``energy_uj`` is readable by root only.
- GPU: NVML's total-energy counter (millijoules since driver load, Volta or newer) through
  ``pynvml`` (``pip install 'provision[nvml]'``), for the GPUs the run used.
- A source that cannot be read is left out with its reason; nothing is estimated from TDP or
  utilisation. RAPL measures whole packages (every process on them), NVML whole GPUs.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.config import cuda_visible_devices
from provision.errors import UsageError

__all__ = ["POWERCAP_ROOT", "EnergyMeter", "EnergyReading", "nvml_gpu_name", "rapl_zones"]

#: Where Linux exposes RAPL energy counters.
POWERCAP_ROOT = Path("/sys/class/powercap")

_TOP_ZONE = re.compile(r"([a-z][a-z0-9_-]*):(\d+)")  # "intel-rapl:0"; subzones are "intel-rapl:0:1"
_ROOT_ONLY = "root only since Linux 5.10; run as root or chmod a+r it"


@dataclass(frozen=True)
class EnergyReading:
    """Energy over one measured interval; ``available`` is false when no counter could be read."""

    available: bool
    joules: float | None
    seconds: float
    watts: float | None
    sources: tuple[str, ...]  # what was summed: "rapl:package-0", "nvml:0 NVIDIA H200", ...
    reason: str  # why a source (or every source) is missing; "" when all asked for were read

    def per_sample(self, n: int) -> float | None:
        """Joules per sample over ``n`` samples, or ``None`` without a measurement."""
        if self.joules is None or n <= 0:
            return None
        return self.joules / n

    def describe(self) -> dict[str, Any]:
        """A JSON-ready copy of the reading."""
        return {
            "available": self.available,
            "joules": self.joules,
            "seconds": self.seconds,
            "watts": self.watts,
            "sources": list(self.sources),
            "reason": self.reason,
        }


@dataclass
class _Zone:
    """One RAPL zone's counter, accumulated across wraps."""

    label: str
    energy: Path
    max_range: int  # µJ
    last: int = 0
    total: int = 0  # µJ since start

    def read(self) -> int:
        return int(self.energy.read_text().strip())

    def advance(self) -> None:
        now = self.read()
        delta = now - self.last
        if delta < 0:  # the counter wrapped past max_energy_range_uj
            delta += self.max_range
        self.total += delta
        self.last = now


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _unreadable(path: Path, exc: OSError | ValueError) -> str:
    if isinstance(exc, PermissionError):
        return f"rapl: {path} not readable ({_ROOT_ONLY})"
    return f"rapl: {path} not readable ({getattr(exc, 'strerror', None) or exc})"


def rapl_zones(root: Path = POWERCAP_ROOT) -> tuple[list[tuple[str, Path]], str]:
    """The RAPL zones to sum as ``(label, folder)`` pairs, or ``([], reason)``.

    Only top-level zones (``intel-rapl:N``) are used: their subzones (``intel-rapl:N:M`` —
    core, uncore, dram) are parts of or beside the package and would be counted twice or
    inconsistently across machines. Of the top-level zones, the ``package-N`` ones are summed
    (one per socket); ``psys`` (the whole platform, which includes the packages) is used only
    when there is no package zone. When a machine exposes the same packages through two
    control types (``intel-rapl`` via MSR and ``intel-rapl-mmio``), only ``intel-rapl`` is read.
    """
    if not root.is_dir():
        return [], f"rapl: no {root} (not Linux, or no RAPL driver)"
    tops: dict[str, list[tuple[int, Path]]] = {}
    for entry in root.iterdir():
        match = _TOP_ZONE.fullmatch(entry.name)
        if match and "rapl" in match.group(1):
            tops.setdefault(match.group(1), []).append((int(match.group(2)), entry))
    if not tops:
        return [], f"rapl: no RAPL zone under {root} (no intel-rapl driver loaded, or a VM without RAPL)"
    kind = min(tops, key=lambda t: (t != "intel-rapl", "mmio" in t, t))
    named: list[tuple[str, Path]] = []
    for _, folder in sorted(tops[kind]):
        try:
            name = (folder / "name").read_text().strip()
        except OSError:
            name = folder.name
        named.append((name, folder))
    chosen = [(f"rapl:{n}", f) for n, f in named if n.startswith("package")]
    chosen = chosen or [(f"rapl:{n}", f) for n, f in named if n == "psys"]
    if not chosen:
        found = ", ".join(n for n, _ in named)
        return [], f"rapl: no package or psys zone under {root} (found {found})"
    return chosen, ""


def _open_rapl(root: Path) -> tuple[list[_Zone], str]:
    """Zones with their first reading, or ``([], reason)``."""
    found, reason = rapl_zones(root)
    zones = []
    for label, folder in found:
        values = []
        for path in (folder / "max_energy_range_uj", folder / "energy_uj"):
            try:
                values.append(_read_int(path))
            except (OSError, ValueError) as exc:
                return [], _unreadable(path, exc)
        zones.append(_Zone(label, folder / "energy_uj", max_range=values[0], last=values[1]))
    return zones, reason


def _visible_device(cuda_index: int) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` entry behind CUDA device ``cuda_index`` (NVML index or UUID)."""
    visible = cuda_visible_devices()
    if visible is None:
        return str(cuda_index)
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    return entries[cuda_index] if cuda_index < len(entries) else f"invisible:{cuda_index}"


def _nvml() -> tuple[Any, str]:
    """pynvml, initialised, or ``(None, reason)``."""
    try:
        import pynvml
    except ImportError:
        return None, "nvml: pynvml is not installed (pip install 'provision[nvml]')"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None, f"nvml: cannot initialise NVML ({exc}); no NVIDIA driver on this machine?"
    return pynvml, ""


def _name(nvml: Any, handle: Any) -> str:
    name = nvml.nvmlDeviceGetName(handle)
    return name.decode() if isinstance(name, bytes) else str(name)


def _handle(nvml: Any, entry: str) -> Any:
    """The NVML handle for a ``CUDA_VISIBLE_DEVICES`` entry: an index or a (prefix of a) ``GPU-`` UUID."""
    if entry.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(entry))
    if entry.startswith("MIG-"):
        raise ValueError("a MIG instance has no energy counter of its own")
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = nvml.nvmlDeviceGetUUID(handle)
        if (uuid.decode() if isinstance(uuid, bytes) else str(uuid)).startswith(entry):
            return handle
    raise ValueError(f"no GPU matches CUDA_VISIBLE_DEVICES entry {entry!r}")


def nvml_gpu_name(cuda_index: int) -> str | None:
    """The name NVML gives CUDA device ``cuda_index``, or ``None`` without pynvml or a driver."""
    nvml, _ = _nvml()
    if nvml is None:
        return None
    try:
        return _name(nvml, _handle(nvml, _visible_device(cuda_index)))
    except Exception:
        return None
    finally:
        nvml.nvmlShutdown()


@dataclass
class _Gpu:
    label: str
    handle: Any
    start: int  # mJ


def _open_gpus(gpus: Sequence[int]) -> tuple[Any, list[_Gpu], str]:
    """NVML and the GPUs' first readings, or ``(None, [], reason)``: all of them or none."""
    nvml, reason = _nvml()
    if nvml is None:
        return None, [], reason
    opened = []
    for index in gpus:
        try:
            handle = _handle(nvml, _visible_device(index))
            opened.append(
                _Gpu(f"nvml:{index} {_name(nvml, handle)}", handle, nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            )
        except Exception as exc:  # NVMLError_NotSupported (pre-Volta), InvalidArgument, ...
            nvml.nvmlShutdown()
            return None, [], f"nvml: GPU {index} has no readable energy counter ({exc})"
    return nvml, opened, ""


class EnergyMeter:
    """Energy between :meth:`start` and :meth:`stop` from RAPL and NVML.

    ``gpus`` are CUDA device indices as this process numbers them (mapped through
    ``CUDA_VISIBLE_DEVICES`` to NVML's devices; NVML ignores ``CUDA_DEVICE_ORDER``, so on
    machines with mixed GPU models set ``CUDA_DEVICE_ORDER=PCI_BUS_ID``). ``interval``: seconds
    between background RAPL samples (``None``: only at start, :meth:`sample` and stop).
    """

    def __init__(self, root: Path = POWERCAP_ROOT, gpus: Sequence[int] = (), *, interval: float | None = 10.0) -> None:
        if interval is not None and interval <= 0:
            raise UsageError(f"energy sampling interval must be positive seconds or None, got {interval}")
        self.root = Path(root)
        self.gpus = tuple(gpus)
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._zones: list[_Zone] = []
        self._rapl_reason = ""
        self._nvml: Any = None
        self._gpus: list[_Gpu] = []
        self._nvml_reason = ""
        self._t0: float | None = None

    def start(self) -> None:
        """Read every counter now; the measured interval begins."""
        if self._t0 is not None:
            raise UsageError("EnergyMeter.start() called twice; call stop() before starting again")
        self._zones, self._rapl_reason = _open_rapl(self.root)
        self._nvml, self._gpus, self._nvml_reason = _open_gpus(self.gpus) if self.gpus else (None, [], "")
        self._stop.clear()
        self._t0 = time.perf_counter()
        if self._zones and self.interval is not None:
            self._thread = threading.Thread(
                target=self._poll, args=(self.interval,), name="provision-energy", daemon=True
            )
            self._thread.start()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.sample()
            except (OSError, ValueError):
                return  # stop() reads again and reports the failure

    def sample(self) -> None:
        """Fold the RAPL counters' progress in now (call more often than the counters wrap)."""
        with self._lock:
            for zone in self._zones:
                zone.advance()

    def stop(self) -> EnergyReading:
        """Read every counter again and return the energy since :meth:`start`."""
        if self._t0 is None:
            raise UsageError("EnergyMeter.stop() called before start()")
        seconds = time.perf_counter() - self._t0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._t0 = None
        joules: list[float] = []
        sources: list[str] = []
        reasons = [r for r in (self._rapl_reason, self._nvml_reason) if r]
        if self._zones:
            try:
                self.sample()
                joules.append(sum(z.total for z in self._zones) / 1e6)
                sources.extend(z.label for z in self._zones)
            except (OSError, ValueError) as exc:
                reasons.append(_unreadable(self._zones[0].energy, exc))
        if self._nvml is not None:
            try:
                used = [self._nvml.nvmlDeviceGetTotalEnergyConsumption(g.handle) - g.start for g in self._gpus]
                joules.append(sum(used) / 1e3)
                sources.extend(g.label for g in self._gpus)
            except Exception as exc:
                reasons.append(f"nvml: energy counter not readable at stop ({exc})")
            finally:
                self._nvml.nvmlShutdown()
                self._nvml = None
        if not joules:
            return EnergyReading(False, None, seconds, None, (), "; ".join(reasons) or "no energy counter")
        total = sum(joules)
        watts = total / seconds if seconds > 0 else None
        return EnergyReading(True, total, seconds, watts, tuple(sources), "; ".join(reasons))

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the sources this meter reads (or why not), without touching the counters."""
        zones, rapl_reason = rapl_zones(self.root)
        return {
            "root": str(self.root),
            "rapl_zones": [label for label, _ in zones],
            "rapl_reason": self._rapl_reason or rapl_reason,
            "gpus": list(self.gpus),
            "nvml_reason": self._nvml_reason,
            "interval_s": self.interval,
        }
