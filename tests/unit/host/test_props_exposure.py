"""/proc/net/tcp and tcp6 as the kernel writes them, any addresses, ports and states, read by psutil's own parser
(psutil.net_connections, pointed at a procfs of our making) and then by exposure.measure."""

import os
from unittest import mock

import psutil
import pytest
from hypothesis import given, strategies as st

from seedcore_boot.config.settings import resolve
from seedcore_boot.host import exposure, reach
from tests.props import result_or_boot_error

OURS = range(1000, 1010)  # socket inodes our fake process holds; 1010-1019 belong to nobody
HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")


@pytest.fixture(scope="module")
def procfs(scratch):
    os.makedirs(f"{scratch}/net")
    os.makedirs(f"{scratch}/{os.getpid()}/fd")
    for fd, inode in enumerate(OURS, start=3):
        os.symlink(f"socket:[{inode}]", f"{scratch}/{os.getpid()}/fd/{fd}")
    return scratch


def line(i, hexdigits, local, port, remote, rport, state, inode):
    return (f"{i:4}: {local:0{hexdigits}X}:{port:04X} {remote:0{hexdigits}X}:{rport:04X} {state} "
            f"00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n")


def table(hexdigits):
    bits = 4 * hexdigits
    special = [0, 1, 0x0100007F, 0xFFFFFFFF, (1 << bits) - 1, 0x0000FFFF << 64 if bits == 128 else 0]
    address = st.one_of(st.sampled_from(special), st.integers(0, (1 << bits) - 1))
    row = st.tuples(address, st.integers(0, 65535), address, st.integers(0, 65535),
                    st.sampled_from(["01", "02", "06", "08", "0A", "0A", "0A", "0B"]), st.integers(1000, 1019))
    return st.lists(row, max_size=6)


@given(tcp=table(8), tcp6=table(32), planned=st.dictionaries(st.sampled_from(sorted(reach.KINDS)),
                                                            st.integers(1, 65535), max_size=4))
def test_any_socket_table_is_measured(procfs, tcp, tcp6, planned):
    for name, rows, digits in (("tcp", tcp, 8), ("tcp6", tcp6, 32)):
        with open(f"{procfs}/net/{name}", "w") as fh:
            fh.write(HEADER + "".join(line(i, digits, *r) for i, r in enumerate(rows)))
    me = psutil.Process()
    with mock.patch.object(psutil, "PROCFS_PATH", procfs):
        listeners = result_or_boot_error(exposure.measure, [me], planned, resolve({}, {}).settings)
    assert isinstance(listeners, list)
    listening = {p for _, p, _, _, state, inode in tcp + tcp6 if state == "0A" and inode in OURS and p}
    assert {l.port for l in listeners} <= listening
    for level, text in exposure.lines(listeners):
        assert level in ("info", "warning") and "\n" not in text


@given(st.one_of(st.ip_addresses().map(str), st.text(max_size=20)))
def test_any_bound_address_is_judged(ip):
    assert exposure._beyond_loopback(ip) in (True, False)


def test_the_fake_procfs_is_read_as_the_kernels(procfs):
    # The property above is only worth something if this pipeline finds a listener at all.
    with open(f"{procfs}/net/tcp", "w") as fh:
        fh.write(HEADER + line(0, 8, 0, 8080, 0, 0, "0A", 1000) + line(1, 8, 0x0100007F, 6379, 0, 0, "0A", 1001)
                 + line(2, 8, 0, 9999, 0, 0, "0A", 1015))
    with open(f"{procfs}/net/tcp6", "w") as fh:
        fh.write(HEADER + line(0, 32, 0, 8080, 0, 0, "0A", 1002))
    me = psutil.Process()
    with mock.patch.object(psutil, "PROCFS_PATH", procfs):
        listeners = exposure.measure([me], {"metrics_export": 8080}, resolve({}, {}).settings)
    assert [(l.port, l.addresses, l.name) for l in listeners] == [(8080, ("0.0.0.0", "::"), "metrics_export")]
