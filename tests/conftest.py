import pytest

from tests.nshost import NsHost, Switch, can_make_hosts


@pytest.fixture
def host():
    ok, why = can_make_hosts()
    if not ok:
        pytest.skip(why)
    h = NsHost("host1")
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def lan():
    """make(octet): a host plugged into one switch at 10.200.0.<octet>; all of it gone after the test."""
    ok, why = can_make_hosts()
    if not ok:
        pytest.skip(why)
    switch = Switch()
    hosts = []

    def make(octet):
        h = NsHost(f"host{octet}")
        hosts.append(h)
        switch.plug(h, octet)
        return h

    try:
        yield make
    finally:
        for h in hosts:
            h.close()
        switch.close()
