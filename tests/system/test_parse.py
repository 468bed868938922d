"""The macOS/Linux text parsers, on real captured macOS outputs (fixtures/macos) and documented formats."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx_console.core.machine import system
from mlx_console.core.machine.parse import (
    GIB,
    MIB,
    kern_pressure_level,
    parse_cpuinfo_model,
    parse_device_info,
    parse_lsof_listen,
    parse_memory_pressure,
    parse_psi,
    parse_swapusage,
    parse_sysctl,
    parse_system_profiler,
    split_host_port,
)

FIX = Path(__file__).parent / "fixtures" / "macos"


def fixture(name: str) -> str:
    return (FIX / name).read_text()


@pytest.mark.parametrize(("name", "expected"), [
    ("mbp-m1pro-16gb-MacBookPro18-1-system_profiler-SPHardwareDataType-detailLevel-mini.txt",
     {"model_name": "MacBook Pro", "model_id": "MacBookPro18,1", "chip": "Apple M1 Pro", "cores": 10,
      "perf_cores": 8, "eff_cores": 2, "memory_bytes": 16 * GIB}),
    ("mbp-m2pro-16gb-Mac14-10-system_profiler-SPHardwareDataType-detailLevel-mini.txt",
     {"model_name": "MacBook Pro", "model_id": "Mac14,10", "chip": "Apple M2 Pro", "cores": 12,
      "perf_cores": 8, "eff_cores": 4, "memory_bytes": 16 * GIB}),
    ("mbp-m1pro-16gb-MacBookPro18-3-system_profiler-SPHardwareDataType.txt",
     {"model_name": "MacBook Pro", "model_id": "MacBookPro18,3", "chip": "Apple M1 Pro", "cores": 10,
      "perf_cores": 8, "eff_cores": 2, "memory_bytes": 16 * GIB}),
    # partial capture with hw.cpufamily log lines from stderr mixed in, capitalised "Performance"
    ("macstudio-m4max-128gb-Mac16-9-system_profiler-SPHardwareDataType-filtered-with-stderr.txt",
     {"model_name": "Mac Studio", "model_id": "Mac16,9", "cores": 16, "perf_cores": 12, "eff_cores": 4,
      "memory_bytes": 128 * GIB}),
])
def test_system_profiler_variants(name: str, expected: dict) -> None:
    assert parse_system_profiler(fixture(name)) == expected


def test_system_profiler_ignores_serials_and_noise() -> None:
    got = parse_system_profiler(fixture("mbp-m1pro-16gb-MacBookPro18-3-system_profiler-SPHardwareDataType.txt"))
    assert "Serial" not in str(got) and "REDACTED" not in str(got)


def test_sysctl_perflevels_and_write_form() -> None:
    values = parse_sysctl(fixture("mbp-m1pro-sysctl-a-hw-perflevel-subset.txt"))
    assert values["hw.ncpu"] == "10"
    assert values["hw.perflevel0.physicalcpu"] == "8" and values["hw.perflevel1.physicalcpu"] == "2"
    # `sudo sysctl iogpu.wired_limit_mb=N` prints `old -> new`: the new value is the current one
    assert parse_sysctl(fixture("mbp-m1max-32gb-sudo-sysctl-iogpu-wired_limit_mb-set.txt")) == {
        "iogpu.wired_limit_mb": "26000"}
    log = parse_sysctl(fixture("unstated-mac-sysctl-iogpu-wired_limit_mb-launchdaemon-log.txt"))
    assert log["iogpu.wired_limit_mb"] == "114688"


def test_chip_macos_falls_back_to_sysctl_when_profiler_lacks_chip() -> None:
    profiler = fixture("macstudio-m4max-128gb-Mac16-9-system_profiler-SPHardwareDataType-filtered-with-stderr.txt")
    sysctl = "machdep.cpu.brand_string: Apple M4 Max\nhw.memsize: 137438953472\nhw.ncpu: 16\n"
    c = system.chip_macos(profiler, sysctl, "macOS 26.4 arm64")
    assert c.name == "Apple M4 Max" and c.apple_silicon
    assert c.model == "Mac Studio (Mac16,9)"
    assert (c.cores, c.perf_cores, c.eff_cores, c.memory_bytes) == (16, 12, 4, 128 * GIB)
    assert c.summary() == "Mac Studio (Mac16,9), Apple M4 Max, 16 cores (12P+4E), 128.0 GiB RAM, macOS 26.4 arm64"


def test_chip_macos_from_sysctl_alone() -> None:
    c = system.chip_macos(None, fixture("mbp-m1pro-sysctl-a-hw-perflevel-subset.txt"))
    assert (c.cores, c.perf_cores, c.eff_cores) == (10, 8, 2)
    assert c.name == "Apple Silicon (chip unknown)"


def test_device_info_python_repr() -> None:
    info = parse_device_info(fixture("applegpu-g14d-mlx-metal-device_info.txt"))
    assert info["max_recommended_working_set_size"] == 188743680000 == 180000 * MIB
    probe = system.MlxProbe(version="0.32", device="Device(gpu, 0)", device_info=info)
    assert probe.working_set == 180000 * MIB
    assert parse_device_info('{"a": 1}') == {"a": 1}
    assert parse_device_info("garbage") == {}


# Documented formats (docs/apple-silicon.md §2); no citable Apple Silicon capture exists for these.
SWAP = "vm.swapusage: total = 2048.00M  used = 1034.25M  free = 1013.75M  (encrypted)\n"
MEMORY_PRESSURE_Q = (
    "The system has 137438953472 (8388608 pages with a page size of 16384).\n"
    "System-wide memory free percentage: 62%\n"
)


def test_swapusage_and_memory_pressure() -> None:
    swap = parse_swapusage(parse_sysctl(SWAP)["vm.swapusage"])
    assert swap == {"total": 2048 * MIB, "used": int(1034.25 * MIB), "free": int(1013.75 * MIB)}
    mp = parse_memory_pressure(MEMORY_PRESSURE_Q)
    assert mp == {"free_percent": 62.0, "total": 137438953472, "page_size": 16384}


@pytest.mark.parametrize(("level", "name"), [(1, "normal"), (2, "warn"), (4, "critical"), (3, "unknown"),
                                              (None, "unknown")])
def test_kernel_pressure_levels(level: int | None, name: str) -> None:
    assert kern_pressure_level(level) == name


def test_memory_macos_combines_sysctl_and_memory_pressure() -> None:
    sysctl = ("hw.memsize: 137438953472\nkern.memorystatus_vm_pressure_level: 2\n" + SWAP
              + "iogpu.wired_limit_mb: 114688 -> 114688\n")
    m = system.memory_macos(sysctl, MEMORY_PRESSURE_Q)
    assert m.total == 128 * GIB
    assert m.available == int(128 * GIB * 0.62)
    assert m.pressure == "warn"
    assert m.swap_total == 2048 * MIB
    assert m.wired_limit_mb == 114688 and m.working_set == 114688 * MIB
    assert "kernel pressure level 2 (warn)" in m.detail
    assert m.pressure_reason == "kernel level 2, 62% free"


def test_memory_macos_default_wired_limit_leaves_working_set_unknown() -> None:
    vm = SimpleNamespace(total=16 * GIB, available=GIB)  # psutil's numbers, used when memory_pressure fails
    m = system.memory_macos("hw.memsize: 17179869184\niogpu.wired_limit_mb: 0\n", None, vm)
    assert m.working_set is None and m.wired_limit_mb == 0
    assert m.available == GIB
    assert m.pressure == "warn"  # no kernel level: from the available ratio (6 %)


def test_psi_and_linux_levels() -> None:
    calm = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    stalled = "some avg10=35.10 avg60=20.00 avg300=5.00 total=99\nfull avg10=12.50 avg60=3.00 avg300=1.00 total=9\n"
    assert parse_psi(stalled)["full"]["avg10"] == 12.5
    vm = SimpleNamespace(total=100 * GIB, available=50 * GIB)
    assert system.memory_linux(vm, calm).pressure == "normal"
    assert system.memory_linux(vm, stalled).pressure == "critical"
    assert system.memory_linux(vm, stalled).pressure_reason == "PSI some avg10=35.10 full avg10=12.50, 50% available"
    assert system.memory_linux(vm, None).pressure == "normal"
    low = SimpleNamespace(total=100 * GIB, available=10 * GIB)
    assert system.memory_linux(low, calm).pressure == "warn"  # PSI calm, but little room for a load
    assert system.memory_linux(SimpleNamespace(total=100, available=3), None).pressure == "critical"


def test_cpuinfo_model() -> None:
    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n"
    assert parse_cpuinfo_model(text) == "AMD EPYC 7B13"
    assert parse_cpuinfo_model("processor : 0\nHardware : BCM2835\n") == "BCM2835"
    assert parse_cpuinfo_model("") is None


# `lsof -nP -iTCP -sTCP:LISTEN` in its documented column format (docs/apple-silicon.md §4): COMMAND is
# truncated, NAME is addr:port (LISTEN) with `*` for any address and [..] around IPv6.
LSOF = """\
COMMAND     PID USER   FD   TYPE             DEVICE SIZE/OFF NODE NAME
ControlCe   512 me     10u  IPv4 0x8f1c2e3a4b5c6d7e      0t0  TCP *:7000 (LISTEN)
Python    41234 me      5u  IPv4 0x1a2b3c4d5e6f7081      0t0  TCP 127.0.0.1:8080 (LISTEN)
python3.1 41300 me      7u  IPv6 0x1a2b3c4d5e6f7082      0t0  TCP [::1]:8000 (LISTEN)
omlx-serv 41301 me      8u  IPv6 0x1a2b3c4d5e6f7083      0t0  TCP [::]:8001 (LISTEN)
Google\\x20 41302 me      9u  IPv4 0x1a2b3c4d5e6f7084      0t0  TCP 127.0.0.1:9222 (LISTEN)
Python    41234 me      6u  IPv4 0x1a2b3c4d5e6f7085      0t0  TCP 127.0.0.1:52100->127.0.0.1:8080 (ESTABLISHED)
garbage line
"""


def test_lsof_listen_parser() -> None:
    got = [(e.command, e.pid, e.user, e.address, e.port) for e in parse_lsof_listen(LSOF)]
    assert got == [
        ("ControlCe", 512, "me", "0.0.0.0", 7000),
        ("Python", 41234, "me", "127.0.0.1", 8080),
        ("python3.1", 41300, "me", "::1", 8000),
        ("omlx-serv", 41301, "me", "::", 8001),
        ("Google ", 41302, "me", "127.0.0.1", 9222),
    ]


def test_split_host_port() -> None:
    assert split_host_port("[::1]:8080") == ("::1", 8080)
    assert split_host_port("*:8080") == ("0.0.0.0", 8080)
    assert split_host_port("nonsense") is None


_LINES = st.lists(st.one_of(
    st.text(max_size=60),
    st.sampled_from(["Memory: 16 GB", "Chip: Apple M3", "Total Number of Cores: x (y performance and z efficiency)",
                     "vm.swapusage: total = M", "hw.memsize: abc", "iogpu.wired_limit_mb: 0 -> ",
                     "Python 1 me 5u IPv4 0x0 0t0 TCP :8080 (LISTEN)", "some avg10=x", "model name :",
                     "System-wide memory free percentage: %"]),
), max_size=20).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(_LINES)
def test_parsers_never_raise_on_garbage(text: str) -> None:
    parse_sysctl(text)
    parse_system_profiler(text)
    parse_lsof_listen(text)
    parse_psi(text)
    parse_memory_pressure(text)
    parse_cpuinfo_model(text)
    parse_device_info(text)
    parse_swapusage(text)
    system.chip_macos(text, text)
    system.memory_macos(text, text, SimpleNamespace(total=GIB, available=GIB // 2))


def test_device_info_deep_nesting_is_not_a_crash() -> None:
    assert parse_device_info("[" * 100_000) == {}
