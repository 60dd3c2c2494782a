"""One emulated pod in the real Docker engine, as a kubelet runs it (kubelet.py is its node).

- Init containers run to completion, in order, before the pod's container. The pod's other containers (KubeRay's
  autoscaler beside the head) start after it in its network namespace (`--network container:`, the pod's
  one address and localhost), restart by the pod's policy, and restart with it (no pause container holds
  the namespace, so a restarted Ray container's sidecars would be left in the old one).
- Probes run as `docker exec` at their initialDelay, period, timeout and failureThreshold; readiness gates
  the Services, a liveness failure kills the container (SIGTERM, SIGKILL after the grace period) and the
  restart policy decides what follows, as it does when the container exits by itself.
- /dev/shm is --shm-size (the memory emptyDir KubeRay mounts there); limits are --cpus and --memory; the
  securityContext is --user, --group-add (fsGroup), --cap-drop, no-new-privileges.
"""

import os
import subprocess
import threading
import time

from . import operator


def docker(*args, timeout=120, check=True, env=None):
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} ... -> {out.returncode}: {out.stderr.strip()[-2000:]}")
    return out



class RunningPod:
    def __init__(self, kubelet, plan, ip):
        self.kubelet, self.plan, self.ip = kubelet, plan, ip
        self.container = f"{kubelet.tag}-{plan.name}"
        self.ready = False
        self.deleting = False
        self.restarts = 0
        self.exit_code = None
        self.exited = threading.Event()
        self.ready_since = None  # when it first became Ready (monotonic)
        self.probe_log = []  # (time, kind, ok)
        self._generation = 0  # bumped at every (re)start: probe loops of an earlier life stop
        self.running = False  # its container has been started (init containers done)
        self.failure = None  # why it never ran
        self.sidecars = {}  # container name -> Sidecar: the pod's containers after containers[0]

    # --- containers -------------------------------------------------------------------------------
    def _argv(self, c, name, detach, sidecar=False):
        pod = self.plan
        # --no-healthcheck: a kubelet runs the pod's probes only; CRI runtimes ignore an image's HEALTHCHECK
        # (ours would run `seedcore-boot status` in KubeRay's autoscaler sidecar too, on the shared /tmp/ray).
        argv = ["run", "--name", name, "--label", f"seedcore.test={self.kubelet.tag}", "--no-healthcheck",
                "-v", f"{self.kubelet.resolv}:/etc/resolv.conf:ro"]
        if sidecar:  # the pod's network namespace, host name and /etc/hosts: those of its first container
            argv += ["--network", f"container:{self.container}"]
        else:
            argv += ["--hostname", pod.name, "--network", self.kubelet.network, "--ip", self.ip]
        if detach:
            argv.append("-d")
        if c.cpu:
            argv += ["--cpus", f"{c.cpu:g}"]
        if c.memory:
            argv += ["--memory", str(c.memory), "--memory-swap", str(c.memory)]
        if pod.shm:
            argv += ["--shm-size", str(pod.shm)]
        sec = {**pod.security, **c.security}
        if "runAsUser" in sec:
            argv += ["--user", f"{sec['runAsUser']}:{sec.get('runAsGroup', sec['runAsUser'])}"]
        if "fsGroup" in pod.security:
            argv += ["--group-add", str(pod.security["fsGroup"])]
        if sec.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        for cap in (sec.get("capabilities") or {}).get("drop") or []:
            argv += ["--cap-drop", cap]
        for mount in c.mounts:
            if mount["mountPath"] == "/dev/shm":
                continue  # --shm-size
            argv += ["-v", f"{self._volume(mount['name'])}:{mount['mountPath']}" + (":ro" if mount.get("readOnly")
                                                                                      else "")]
        env = {k: v.replace(operator.POD_IP, self.ip) for k, v in c.env.items()}
        for key in env:
            argv += ["-e", key]  # the value comes from docker's environment: never on a command line
        command = [operator.expand(a, env) for a in c.command or []]
        args = [operator.expand(a, env) for a in c.args or []]
        if command:
            argv += ["--entrypoint", command[0], c.image, *command[1:], *args]
        else:
            argv += [c.image, *args]
        return argv, dict(os.environ, **env)

    def _volume(self, name):
        spec = self.plan.volumes[name]
        path = f"{self.kubelet.dir}/pods/{self.plan.name}/{name}"
        if not os.path.isdir(path):
            os.makedirs(path)
            group = int(self.plan.security.get("fsGroup", 0))
            if "configMap" in spec:
                for key, text in self.kubelet.op.config_map(spec["configMap"]["name"]).items():
                    _write(f"{path}/{key}", text, 0, 0o644)
            elif "secret" in spec:  # root's files, mode defaultMode, group fsGroup (the kubelet's doing)
                name, mode = spec["secret"]["secretName"], spec["secret"].get("defaultMode", 0o644)
                for key in self.kubelet.op.secret_keys(name):
                    _write(f"{path}/{key}", self.kubelet.op.secret(name, key), group, mode)
            elif "projected" in spec:  # the API server's admission adds one: the service account's token, CA
                for key, text in self.kubelet.op.projected(spec["projected"], self.plan.name).items():
                    _write(f"{path}/{key}", text, group, spec["projected"].get("defaultMode", 0o644))
            else:  # an emptyDir, group-owned by fsGroup
                os.chown(path, 0, group)
                os.chmod(path, 0o2775)
            os.chmod(path, os.stat(path).st_mode | 0o755)
        return path

    def boot(self):
        try:
            for i, c in enumerate(self.plan.init):
                name = f"{self.container}-init{i}"
                argv, env = self._argv(c, name, detach=True)
                docker(*argv, env=env)
                code = int(docker("wait", name, timeout=None).stdout.strip() or -1)
                if code != 0 or self.deleting:  # (KubeRay's wait-gcs-ready never fails: it loops forever)
                    self.failure = f"init container {c.name} exited {code}: {self.logs(name)[-2000:]}"
                    self.exited.set()
                    return
            if self.deleting:
                self.exited.set()
                return
            argv, env = self._argv(self.plan.containers[0], self.container, detach=True)
            docker(*argv, env=env)
            self.running = True
            for c in self.plan.containers[1:]:
                self.sidecars[c.name] = Sidecar(self, c)
        except AssertionError as exc:
            self.failure = str(exc)
            self.exited.set()
            return
        self._started()
        self._watch_exit()

    def _started(self):
        self._generation += 1
        if self.plan.containers[0].readiness is None:  # no readiness probe: Ready once running (Kubernetes)
            self.ready = True
            self.ready_since = self.ready_since or time.monotonic()
            self.kubelet.update_services()
        for kind in ("readiness", "liveness"):
            p = getattr(self.plan.containers[0], kind)
            if p:
                threading.Thread(target=self._probe_loop, args=(kind, p, self._generation), daemon=True).start()

    def _watch_exit(self):
        while True:
            out = docker("wait", self.container, timeout=None, check=False)
            code = int(out.stdout.strip() or -1)
            self.ready = False
            self.kubelet.update_services()
            policy = self.plan.restart_policy
            if self.deleting or policy == "Never" or (policy == "OnFailure" and code == 0):
                self.exit_code = code
                self.exited.set()
                return
            self.restarts += 1  # the kubelet restarts the container in place: same pod, address, volumes
            docker("start", self.container, check=False)
            for sidecar in self.sidecars.values():
                sidecar.rejoin()
            self._started()

    def _probe_loop(self, kind, probe, generation):
        time.sleep(probe.initial_delay)
        failures = 0
        while generation == self._generation and not self.deleting and not self.exited.is_set():
            ok = self.exec(probe.command, timeout=probe.timeout).returncode == 0
            self.probe_log.append((time.monotonic(), kind, ok))
            failures = 0 if ok else failures + 1
            if kind == "readiness":
                changed = ok != self.ready and (ok or failures >= probe.failure)
                if changed:
                    self.ready = ok
                    if ok and self.ready_since is None:
                        self.ready_since = time.monotonic()
                    self.kubelet.update_services()
            elif failures >= probe.failure and not self.deleting:
                # The kubelet kills an unhealthy container; its restart policy decides what follows.
                docker("stop", "-t", str(int(self.plan.grace)), self.container, check=False,
                       timeout=self.plan.grace + 60)
                return
            time.sleep(probe.period)

    # --- looking at it ----------------------------------------------------------------------------
    def exec(self, argv, timeout=30, user=None):
        try:
            return subprocess.run(["docker", "exec", *(["--user", user] if user else []), self.container, *argv],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, exc.stdout or "", f"timed out after {timeout} s")

    def logs(self, name=None):
        out = docker("logs", name or self.container, check=False, timeout=60)
        return out.stdout + out.stderr

    def wait_ready(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.ready:
                return
            if self.exited.is_set():
                raise AssertionError(f"{self.plan.name} exited {self.exit_code} ({self.failure or 'its container'})"
                                     f":\n{self.logs()[-4000:] if self.running else ''}")
            time.sleep(0.5)
        raise AssertionError(f"{self.plan.name} not Ready within {timeout} s:\n{self.logs()[-4000:]}")


def _write(path, text, group, mode):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chown(path, 0, group)
    os.chmod(path, mode)


class Sidecar:
    """One of a pod's containers after containers[0], started in its network namespace, restarted in place by
    the pod's restart policy while the pod lives."""

    def __init__(self, pod, spec):
        self.pod, self.spec = pod, spec
        self.container = f"{pod.container}-{spec.name}"
        self.restarts = 0
        self.exit_code = None
        argv, env = pod._argv(spec, self.container, detach=True, sidecar=True)
        docker(*argv, env=env)
        threading.Thread(target=self._watch, daemon=True).start()

    @property
    def running(self):
        return self.exit_code is None

    def _watch(self):
        while True:
            code = int(docker("wait", self.container, timeout=None, check=False).stdout.strip() or -1)
            policy = self.pod.plan.restart_policy
            if self.pod.deleting or policy == "Never" or (policy == "OnFailure" and code == 0):
                self.exit_code = code
                return
            self.restarts += 1
            docker("start", self.container, check=False)

    def rejoin(self):
        """Into the namespace of the pod's restarted first container (the old one went with it): stopped
        here, started again by _watch (a restart the kubelet, whose pause container keeps the namespace,
        would not make)."""
        docker("stop", "-t", "0", self.container, check=False)

    def logs(self):
        return self.pod.logs(self.container)
