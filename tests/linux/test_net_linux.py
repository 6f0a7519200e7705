"""Xdp and SchedClassifier (tcx) attached to lo inside a private network namespace (nothing left behind)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinyaya.linux import LinuxKernel

from .conftest import FIXTURES

pytestmark = pytest.mark.linux

SCRIPT = textwrap.dedent("""
    import socket, sys
    from tinyaya import EbpfLoader
    from tinyaya.linux import LinuxKernel
    from tinyaya.maps import Array, u64
    from tinyaya.programs import SchedClassifier, TcAttachType, Xdp
    ebpf = EbpfLoader(kernel=LinuxKernel()).load_file(sys.argv[1])
    xdp, tc = Xdp.try_from(ebpf.program_mut("count_xdp")), SchedClassifier.try_from(ebpf.program_mut("count_tc"))
    xdp.load(); tc.load()
    assert xdp.test_run(data=bytes(64)).retval == 2  # XDP_PASS
    links = [xdp.attach("lo"), tc.attach("lo", TcAttachType.Ingress)]
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 4242))
    rx.settimeout(10)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(5):
        s.sendto(b"x", ("127.0.0.1", 4242))
    assert [rx.recv(16) for _ in range(5)] == [b"x"] * 5
    s.close(); rx.close()
    packets = Array(ebpf.map("PACKETS"), value=u64)
    print(packets[0], packets[1])
    xdp.detach(links[0]); tc.detach(links[1])
    ebpf.close()
""")


def test_xdp_and_tcx_count_loopback_packets(linux_kernel: LinuxKernel, tmp_path: Path) -> None:
    script = tmp_path / "net.py"
    script.write_text(SCRIPT)
    cmd = ["unshare", "-n", "sh", "-c",
           f'ip link set lo up && exec "{sys.executable}" "{script}" "{FIXTURES / "net.o"}"']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    if r.returncode != 0 and ("unshare" in r.stderr or "ip:" in r.stderr or "not found" in r.stderr):
        pytest.skip(f"no private network namespace here: {r.stderr.strip()}")
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
    assert r.stdout.split() == ["5", "5"], (r.stdout, r.stderr)
