import pytest

from seedcore_boot.errors import BootError
from seedcore_boot.host import portclaim
from seedcore_boot.host.ports import PlannedPort


def planned(*numbers):
    # High ports nobody here plans: claims are per network namespace, and other tests may run nodes in this one.
    return [PlannedPort(f"p{n}", 47000 + n, "", f"p{n}_port") for n in numbers]


def test_a_second_node_on_the_same_ports_is_refused_in_one_line_until_the_first_goes():
    first = portclaim.claim(planned(1, 2))
    try:
        with pytest.raises(BootError) as err:
            portclaim.claim(planned(1, 2))
        text = str(err.value)
        assert err.value.exit_code == 2 and "\n" not in text
        assert "port 47001 (p1) belongs to another seedcore-boot node in this network namespace" in text
        assert "one Ray node per machine" in text and "p1_port" in text
    finally:
        first.close()
    portclaim.claim(planned(1, 2)).close()  # the claims went with the node


def test_a_refused_claim_keeps_none_of_the_ports_it_got_before():
    first = portclaim.claim(planned(2))
    try:
        with pytest.raises(BootError, match="47002"):
            portclaim.claim(planned(1, 2))  # gets 47001, then meets 47002
        portclaim.claim(planned(1)).close()  # 47001 was let go
    finally:
        first.close()
