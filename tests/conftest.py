import pytest

from tests.nshost import Lan, NsHost, can_make_hosts


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
    network = Lan()
    try:
        yield network.host
    finally:
        network.close()
