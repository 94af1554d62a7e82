"""Energy counters: fake powercap trees made of real files in tmp_path, and NVML where it is absent.

The fake trees follow the kernel's layout (``intel-rapl:N/{name,energy_uj,max_energy_range_uj}``
with subzones ``intel-rapl:N:M`` inside and beside them); the tests move the counters between
``start`` and ``stop`` by rewriting the files and expect exact joules.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.validation.power import EnergyMeter, EnergyReading, rapl_zones

REPO = Path(__file__).resolve().parents[1]
MAX = 262_143_328_850  # a real max_energy_range_uj


def zone(root: Path, folder: str, name: str, energy: int, max_range: int = MAX) -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    return path / "energy_uj"


def advance(counter: Path, value: int) -> None:
    counter.write_text(f"{value}\n")


def nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


def test_package_zones_summed_and_subzones_ignored(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    p0 = zone(root, "intel-rapl:0", "package-0", 1_000_000)
    p1 = zone(root, "intel-rapl:1", "package-1", 5_000_000)
    core = zone(root, "intel-rapl:0/intel-rapl:0:0", "core", 0)  # nested, as in sysfs
    dram = zone(root, "intel-rapl:0:1", "dram", 0)  # the class folder also lists subzones flat
    meter = EnergyMeter(root=root, interval=None)
    meter.start()
    advance(p0, 2_500_000)
    advance(p1, 7_500_000)
    advance(core, 900_000_000)
    advance(dram, 900_000_000)
    reading = meter.stop()
    assert reading.available and reading.reason == ""
    assert reading.joules == 4.0
    assert reading.sources == ("rapl:package-0", "rapl:package-1")
    assert reading.seconds > 0 and reading.watts == pytest.approx(4.0 / reading.seconds)
    assert reading.per_sample(8) == 0.5 and reading.per_sample(0) is None
    doc = reading.describe()
    assert json.loads(json.dumps(doc)) == doc and doc["sources"] == ["rapl:package-0", "rapl:package-1"]


def test_wraparound_is_folded_in_across_samples(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    counter = zone(root, "intel-rapl:0", "package-0", 800_000, max_range=1_000_000)
    meter = EnergyMeter(root=root, interval=None)
    meter.start()
    advance(counter, 50_000)  # wrapped once: +250_000
    meter.sample()
    advance(counter, 0)  # wrapped again: +950_000
    reading = meter.stop()
    assert reading.joules == 1.2


def test_psys_only_when_there_is_no_package(tmp_path: Path) -> None:
    root = tmp_path / "laptop"
    psys = zone(root, "intel-rapl:1", "psys", 0)
    meter = EnergyMeter(root=root, interval=None)
    meter.start()
    advance(psys, 3_000_000)
    reading = meter.stop()
    assert reading.sources == ("rapl:psys",) and reading.joules == 3.0

    pkg = zone(root, "intel-rapl:0", "package-0", 0)
    meter.start()
    advance(pkg, 1_000_000)
    advance(psys, 9_000_000)
    reading = meter.stop()
    assert reading.sources == ("rapl:package-0",) and reading.joules == 1.0


def test_mmio_duplicate_of_the_package_is_not_counted_twice(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    msr = zone(root, "intel-rapl:0", "package-0", 0)
    mmio = zone(root, "intel-rapl-mmio:0", "package-0", 0)
    meter = EnergyMeter(root=root, interval=None)
    meter.start()
    advance(msr, 2_000_000)
    advance(mmio, 2_000_000)
    assert meter.stop().joules == 2.0
    shutil.rmtree(root / "intel-rapl:0")
    assert [label for label, _ in rapl_zones(root)[0]] == ["rapl:package-0"]  # mmio is used when alone


def test_absent_powercap_is_reported_not_guessed(tmp_path: Path) -> None:
    meter = EnergyMeter(root=tmp_path / "nowhere", interval=None)
    meter.start()
    reading = meter.stop()
    assert reading == EnergyReading(False, None, reading.seconds, None, (), reading.reason)
    assert "no " in reading.reason and "nowhere" in reading.reason and "RAPL" in reading.reason
    assert reading.per_sample(10) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    zone(empty, "dtpm:0", "soc", 0)
    meter = EnergyMeter(root=empty, interval=None)
    meter.start()
    assert "no RAPL zone" in meter.stop().reason


def test_no_package_zone_lists_what_was_found(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "dram", 0)
    zones, reason = rapl_zones(tmp_path)
    assert zones == [] and "no package or psys zone" in reason and "found dram" in reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads energy_uj whatever its mode")
def test_unreadable_energy_counter_says_why(tmp_path: Path) -> None:
    counter = zone(tmp_path, "intel-rapl:0", "package-0", 0)
    counter.chmod(0)
    try:
        meter = EnergyMeter(root=tmp_path, interval=None)
        meter.start()
        reading = meter.stop()
    finally:
        counter.chmod(0o644)
    assert not reading.available and reading.joules is None
    assert "energy_uj not readable (root only since Linux 5.10" in reading.reason


def test_garbage_counter_is_not_read_as_energy(tmp_path: Path) -> None:
    counter = zone(tmp_path, "intel-rapl:0", "package-0", 0)
    counter.write_text("n/a\n")
    meter = EnergyMeter(root=tmp_path, interval=None)
    meter.start()
    reading = meter.stop()
    assert not reading.available and "energy_uj not readable" in reading.reason


@pytest.mark.skipif(nvml_works(), reason="this machine has an NVIDIA driver")
def test_gpu_without_nvml_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    meter = EnergyMeter(root=tmp_path / "nowhere", gpus=(0,), interval=None)
    meter.start()
    reading = meter.stop()
    assert not reading.available and "nvml: " in reading.reason and "rapl: " in reading.reason
    # With RAPL readable the CPU energy is reported, and the missing GPU source is named.
    counter = zone(tmp_path / "powercap", "intel-rapl:0", "package-0", 0)
    meter = EnergyMeter(root=tmp_path / "powercap", gpus=(0,), interval=None)
    meter.start()
    advance(counter, 1_000_000)
    reading = meter.stop()
    assert reading.available and reading.joules == 1.0 and reading.sources == ("rapl:package-0",)
    assert reading.reason.startswith("nvml: ")
    assert meter.describe()["nvml_reason"] == reading.reason


def test_pynvml_not_installed(tmp_path: Path) -> None:
    code = f"""
        import sys
        sys.modules["pynvml"] = None
        from pathlib import Path
        from provision.validation.power import EnergyMeter, nvml_gpu_name
        meter = EnergyMeter(root=Path({str(tmp_path)!r}), gpus=(0,), interval=None)
        meter.start()
        print(meter.stop().reason)
        print(nvml_gpu_name(0))
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "nvml: pynvml is not installed (pip install 'provision[nvml]')" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "None"


def test_start_stop_order_and_sampling_thread(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = EnergyMeter(root=tmp_path, interval=0.01)
    with pytest.raises(UsageError, match="before start"):
        meter.stop()
    meter.start()
    with pytest.raises(UsageError, match="called twice"):
        meter.start()
    assert "provision-energy" in [t.name for t in threading.enumerate()]
    assert meter.stop().joules == 0.0
    assert "provision-energy" not in [t.name for t in threading.enumerate()]
    doc = meter.describe()
    assert json.loads(json.dumps(doc)) == doc and doc["rapl_zones"] == ["rapl:package-0"]
    with pytest.raises(UsageError, match="interval"):
        EnergyMeter(root=tmp_path, interval=0)
