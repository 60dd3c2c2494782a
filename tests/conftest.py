import pytest

from tests.nshost import NsHost, can_make_hosts


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
