import pytest

from tests.nshost import Lan, NsHost, can_make_hosts
from tests.skips import need


def pytest_collection_modifyitems(items):
    """Tests on the Go-built control plane and operator run last: on a fresh machine scripts/test builds them
    in the background while every other test runs (a stable sort keeps each group's order)."""
    items.sort(key=lambda item: item.get_closest_marker("go_tools") is not None)


@pytest.fixture
def host():
    need(*can_make_hosts())
    h = NsHost("host1")
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def lan():
    """make(octet): a host plugged into one switch at 10.200.0.<octet>; all of it gone after the test."""
    need(*can_make_hosts())
    network = Lan()
    try:
        yield network.host
    finally:
        network.close()
