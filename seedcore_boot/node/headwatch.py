"""A worker watches its head from the moment the wait found it healthy until the worker stops.

Two different events look alike from here and need opposite answers:
- the head is unreachable (a cut link, a switch reboot, a paused VM, or a head that died): Ray keeps the
  worker in its cluster until the head's health checks declare it dead (raydeath.py, 65 s with Ray's
  defaults), so the worker waits that long and says so once, and once more when the head answers again;
- the head answers, but it is not the head this worker joined: a new GCS at the same address (another
  cluster id), or one that does not hold this node ALIVE (CheckAlive about our own raylet). The worker then
  belongs to no cluster at all: it leaves at once, so its restart policy joins the new one. With Redis fault
  tolerance a restarted head is the same cluster (its id and node table come back from Redis): it stays.

Ray's raylet notices a new cluster on its own too, and that is what made a worker with head_lost_timeout 60
leave within 20 s of a new head answering (issue 28). Measured here (tests/e2e/test_partition.py): the
raylet asks the GCS CheckAlive about itself every raylet_liveness_self_check_interval_ms (5 s), its calls
carry the cluster id it joined, the new GCS refuses them ("WrongClusterID"), and the raylet dies about 5 s
after the new head answers: "node_manager.cc:530: GCS returned an authentication error. This may happen when
GCS is not backed by a DB and restarted" (a fatal log line, a stack trace, `ray start` exits). We make that
deliberate: the same facts checked every second, and one line that says why.

Watch is the pure state machine (unit-tested); HeadWatch runs it in a thread against the real GCS.
"""

import threading
import time
from typing import NamedTuple, Optional

from ..config.addresses import host_port
from ..errors import BootError
from ..ray import gcsprobe


class HeadLost(BootError):
    """The head is gone or replaced: the worker stops its node and exits 1 (its restart policy waits anew)."""


class Probe(NamedTuple):
    """One look at the head. ok: CheckAlive answered healthy; cluster: its cluster id when it answered;
    node_alive: whether it holds our raylet ALIVE (None: not asked, the node is not registered yet)."""
    ok: bool
    detail: str = ""
    cluster: Optional[str] = None
    node_alive: Optional[bool] = None


UNKNOWN_NODE_CHECKS = 2  # answers in a row that do not know our node before we believe them


class Watch:
    """The state machine: feed it probes with the time they were made, read `lost` (a HeadLost or None) and
    the lines to log from `said` (drained by the caller)."""

    def __init__(self, where, wait_s, why, cluster, now, wall):
        self.where, self.wait_s, self.why, self.cluster = where, wait_s, why, cluster
        self.last_ok = (now, wall)
        self.last_error = None  # set while the head does not answer
        self.joined = False  # the head has held our node ALIVE at least once
        self.unknown = 0
        self.lost = None
        self.said = []

    def observe(self, probe, now, wall, dying=False):
        """dying: Ray is dying anyway, so one answer that does not know this node is enough."""
        if self.lost:
            return
        if not probe.ok:
            if self.last_error is None:
                since = time.strftime("%H:%M:%S", time.localtime(self.last_ok[1]))
                self.said.append(("warn", f"head {self.where} unreachable since {since} ({probe.detail}); "
                                          f"waiting up to {self.wait_s:g} s {self.why}"))
            self.last_error = probe.detail
            if now - self.last_ok[0] >= self.wait_s:
                self.lost = self._gone(now)
            return
        if self.cluster and probe.cluster and probe.cluster != self.cluster:
            self.lost = HeadLost(
                f"the head at {self.where} is another cluster now (cluster id {probe.cluster[:12]}..., this "
                f"worker joined {self.cluster[:12]}...): a new head replaced the one this node belonged to",
                "this worker stops so that its restart policy joins the new cluster")
            return
        if probe.node_alive is False and self.joined:
            self.unknown += 1
            if dying or self.unknown >= UNKNOWN_NODE_CHECKS:
                self.lost = HeadLost(
                    f"the head at {self.where} does not hold this node ALIVE any more: it was replaced or "
                    "declared this node dead",
                    "this worker stops so that its restart policy joins the cluster anew")
                return
        else:
            self.unknown = 0
        self.joined = self.joined or bool(probe.node_alive)
        if self.last_error is not None:
            state = "; this node is ALIVE" if probe.node_alive else ""
            self.said.append(("event", f"head {self.where} reachable again after {now - self.last_ok[0]:.0f} s"
                                       f"{state}"))
        self.last_ok, self.last_error = (now, wall), None

    def _gone(self, now):
        since = time.strftime("%H:%M:%S", time.localtime(self.last_ok[1]))
        return HeadLost(f"the head at {self.where} is gone since {since} (no answer for "
                        f"{now - self.last_ok[0]:.0f} s; waited {self.wait_s:g} s {self.why}; "
                        f"last error: {self.last_error})",
                        "this worker stops so that its restart policy brings it back to wait for the head")

    def check(self, now, dying=False):
        """The HeadLost to raise now, if any; at all while unreachable when Ray is dying anyway (its raylet
        gives up on a lost head too; then the head, not the raylet, is the news)."""
        if self.lost:
            return self.lost
        if self.last_error is not None and (dying or now - self.last_ok[0] >= self.wait_s):
            return self._gone(now)
        return None


class HeadWatch:
    """Runs a Watch every `interval` s in a thread: CheckAlive (about our raylet once it is known), and the
    cluster id when the head answered."""

    def __init__(self, host, port, ip, wait_s, why, cluster, log, resolve, interval=1.0):
        self.host, self.ip, self.port, self.log, self.resolve = host, ip, port, log, resolve
        self.interval = interval
        self.raylet = None
        self.watch = Watch(host_port(host, port), wait_s, why, cluster, time.monotonic(), time.time())
        self._lock = threading.Lock()  # the thread's looks and check()'s last look when Ray dies
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="head-watch", daemon=True)
        self._thread.start()

    def watch_node(self, node_ip, node_manager_port):
        """Ask about this node from now on (its raylet is registered once Ray printed its marker)."""
        # Not host_port(): no one reads this; it is the key the GCS matches, "IP:node_manager_port" as
        # gcsprobe.check_alive measured it (with IPv4; an IPv6 node was not measured).
        self.raylet = f"{node_ip}:{node_manager_port}"

    def current_ip(self):
        """The head's address now: its name resolved again (a head pod that comes back has another IP), or the
        last address that answered when the name does not resolve (a Kubernetes Service whose head is not
        Ready has no endpoints for a moment; the head itself may well be up)."""
        try:
            return self.resolve(self.host)
        except OSError:
            return self.ip

    def probe(self):
        ip = self.current_ip()
        raylets = (self.raylet,) if self.raylet else ()
        alive = gcsprobe.check_alive(ip, self.port, self.interval, raylets)
        if not alive.ok:
            return ip, Probe(False, f"{ip}: {alive.detail}" if ip != self.host else alive.detail)
        try:
            cluster = gcsprobe.cluster_id(ip, self.port, self.interval) if self.watch.cluster else None
        except gcsprobe.GcsError as exc:
            return ip, Probe(False, str(exc))
        return ip, Probe(True, "healthy", cluster, alive.raylet_alive[0] if alive.raylet_alive else None)

    def _run(self):
        while not self._done.wait(self.interval):
            self._look()

    def _look(self, dying=False):
        ip, probe = self.probe()
        with self._lock:
            if probe.ok:
                self.ip = ip
            self.watch.observe(probe, time.monotonic(), time.time(), dying)
            said, self.watch.said = self.watch.said, []
        for level, line in said:
            (self.log.warn if level == "warn" else self.log.event)("head", line)

    def check(self, dying=False):
        if dying and self.watch.lost is None:
            # Ray is dying: look once more now, so the line names the cause. The raylet itself exits on a
            # new head's first answer ("GCS returned an authentication error", node_manager.cc: its calls
            # carry the old cluster id), which can come between two of our looks; and a raylet the head
            # declared dead exits when it hears so ("mistakenly been marked as dead").
            self._look(dying=True)
        lost = self.watch.check(time.monotonic(), dying)
        if lost:
            raise lost

    def close(self):
        self._done.set()
