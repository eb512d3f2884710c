"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager.

No container runtime exists here, so there is no kubelet: Pods are created by the real
controllers but run nowhere unless a test's node agent runs them. Run
`python -m tests.harness.kube` to start one by hand; it prints the kubeconfig path.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.harness import pki as pki_module
from tests.harness.processes import (
    free_port,
    run_build_script,
    start_process,
    stop_process,
    wait_until,
)

SERVICE_CIDR = "10.0.0.0/24"


@dataclass
class ControlPlane:
    """A running control plane; `kubeconfig` holds admin credentials for it."""

    kubeconfig: Path
    server: str
    bin_dir: Path
    workdir: Path | None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def existing(cls, kubeconfig: Path) -> ControlPlane:
        """A cluster somebody else runs (kind, for example): nothing to start or stop."""
        config = yaml.safe_load(kubeconfig.read_text())
        current = config.get("current-context")
        context = next(c for c in config["contexts"] if c["name"] == current)["context"]
        cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])
        kubectl = shutil.which("kubectl")
        bin_dir = Path(kubectl).parent if kubectl else run_build_script("build-k8s.sh")
        return cls(kubeconfig, cluster["cluster"]["server"], bin_dir, None)

    @classmethod
    def start(cls, workdir: Path | None = None) -> ControlPlane:
        bin_dir = run_build_script("build-k8s.sh")
        workdir = workdir or Path(tempfile.mkdtemp(prefix="streamhouse-k8s-"))
        pki = pki_module.generate(workdir / "pki")
        etcd_client, etcd_peer, apiserver_port = free_port(), free_port(), free_port()
        server = f"https://127.0.0.1:{apiserver_port}"
        kubeconfig = workdir / "admin.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(server, pki)))
        plane = cls(kubeconfig, server, bin_dir, workdir)
        try:
            plane._start_etcd(etcd_client, etcd_peer)
            plane._start_apiserver(apiserver_port, etcd_client, pki)
            plane._start_controller_manager(pki)
        except BaseException:
            plane.stop()
            raise
        return plane

    @property
    def _dir(self) -> Path:
        assert self.workdir is not None, "an existing cluster has no local processes"
        return self.workdir

    def _start_etcd(self, client_port: int, peer_port: int) -> None:
        log = self._dir / "etcd.log"
        client = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        process = start_process(
            [
                str(self.bin_dir / "etcd"),
                "--name=default",
                f"--data-dir={self._dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            log,
        )
        self.processes.append(process)
        wait_until(
            lambda: b"true" in urllib.request.urlopen(f"{client}/health", timeout=1).read(),
            60,
            "etcd",
            process,
            log,
        )

    def _start_apiserver(self, port: int, etcd_port: int, pki: pki_module.Pki) -> None:
        log = self._dir / "kube-apiserver.log"
        process = start_process(
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self._dir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.server_cert}",
                f"--tls-private-key-file={pki.server_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=0",
            ],
            log,
        )
        self.processes.append(process)
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.server}/readyz", timeout=2, context=context) as r:
                return bool(r.status == 200)

        wait_until(ready, 120, "kube-apiserver", process, log)

    def _start_controller_manager(self, pki: pki_module.Pki) -> None:
        log = self._dir / "kube-controller-manager.log"
        process = start_process(
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={pki.service_account_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--concurrent-statefulset-syncs=5",
                "--v=0",
            ],
            log,
        )
        self.processes.append(process)
        # The controller manager has no readiness endpoint we serve; a short liveness check
        # catches bad flags. Tests wait on the objects it creates, not on the process.
        time.sleep(1.0)
        if process.poll() is not None:
            raise RuntimeError(f"kube-controller-manager exited: see {log}")

    def kubectl(self, *args: str, input_text: str | None = None) -> str:
        """Run the kubectl we built against this control plane and return its stdout."""
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            )
        return result.stdout

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)
        self.processes.clear()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _kubeconfig(server: str, pki: pki_module.Pki) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "streamhouse-test",
                "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate": str(pki.admin_cert),
                    "client-key": str(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": "streamhouse-test",
                "context": {"cluster": "streamhouse-test", "user": "admin", "namespace": "default"},
            }
        ],
        "current-context": "streamhouse-test",
    }


def main() -> None:
    """Start a control plane and keep it running until interrupted."""
    plane = ControlPlane.start()
    print(plane.kubeconfig, flush=True)
    try:
        while all(p.poll() is None for p in plane.processes):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        plane.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
