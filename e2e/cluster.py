"""A Kubernetes API server on etcd, and a Helm repository of Istio's charts, on loopback.

No kubelet, scheduler or controller-manager runs: objects are stored, validated and
served as a real cluster does, but no pod ever starts, so no Deployment becomes ready.
The e2e stacks therefore set `istio.awaitReleases: false` (README, "The e2e tier").
Admission webhooks are switched off in the API server for the same reason: their
server, istiod, never runs; the webhook configurations are created and checked like any
other object.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from e2e.tools import cache_dir, free_port, run, tool

DEV_CONTEXT = "kind-istio-dev"
"""The context Pulumi.dev.yaml names (`kubernetes:context`); the kubeconfig's current one."""
TOKEN = "e2e-admin-token"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def _established(crd: Any) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@dataclass
class Cluster:
    """A running API server: where it listens and the kubeconfig that reaches it."""

    server: str
    kubeconfig: Path

    def get(self, path: str) -> Any:
        """GET an API path (`/api/v1/namespaces`) as the admin, parsed from JSON."""
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, context=_insecure(), timeout=30) as response:
            return yaml.safe_load(response.read())

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        """POST `body` as JSON; (HTTP status, parsed answer), errors included."""
        request = urllib.request.Request(
            self.server + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=_insecure(), timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def install_crds(self, path: Path) -> dict[tuple[str, str], str]:
        """Create the CRDs of a file; (apiVersion, kind) -> plural, once established."""
        plurals = {}
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            status, answer = self.post(CRDS, crd)
            assert status in (200, 201), answer
            names = crd["spec"]["names"]
            for version in crd["spec"]["versions"]:
                plurals[(f"{crd['spec']['group']}/{version['name']}", names["kind"])] = names[
                    "plural"
                ]
            deadline = time.monotonic() + 60
            while not _established(self.get(f"{CRDS}/{crd['metadata']['name']}")):
                assert time.monotonic() < deadline, f"{crd['metadata']['name']} not established"
                time.sleep(0.2)
        return plurals

    def create(self, obj: dict[str, Any], plurals: dict[tuple[str, str], str]) -> None:
        """Create a core object or one of the installed CRDs' (`plurals`)."""
        namespace = obj["metadata"].get("namespace")
        scope = f"/namespaces/{namespace}" if namespace else ""
        if "/" in obj["apiVersion"]:
            path = f"/apis/{obj['apiVersion']}{scope}/{plurals[(obj['apiVersion'], obj['kind'])]}"
        else:  # the core group: pods, services, namespaces
            path = f"/api/{obj['apiVersion']}{scope}/{obj['kind'].lower()}s"
        status, answer = self.post(path, obj)
        assert status in (200, 201), f"{obj['kind']} {obj['metadata']['name']}: {answer}"

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return False
            raise
        return True


def _insecure() -> ssl.SSLContext:
    # The API server's certificate is the self-signed one it made for 127.0.0.1.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _wait_ready(server: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited:\n{log.read_text()[-4000:]}")
        try:
            request = urllib.request.Request(
                server + "/readyz", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            with urllib.request.urlopen(request, context=_insecure(), timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"kube-apiserver not ready in {timeout}s:\n{log.read_text()[-4000:]}")


@contextmanager
def running_cluster(workdir: Path, context: str = DEV_CONTEXT) -> Iterator[Cluster]:
    """etcd and kube-apiserver on 127.0.0.1, stopped (and their data gone) afterwards;
    the kubeconfig names it `context` (the stack file's `kubernetes:context`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "service-account.key"
    run(["openssl", "genrsa", "-out", key, "2048"]).check()
    run(["openssl", "rsa", "-in", key, "-pubout", "-out", workdir / "service-account.pub"]).check()
    (workdir / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')
    etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        etcd_log = (workdir / "etcd.log").open("wb")
        processes.append(
            subprocess.Popen(
                [tool("etcd"), workdir / "etcd", str(etcd_port), str(etcd_peer)],
                stdout=etcd_log,
                stderr=subprocess.STDOUT,
            )
        )
        api_log_path = workdir / "kube-apiserver.log"
        api_log = api_log_path.open("wb")
        processes.append(
            subprocess.Popen(
                [
                    tool("kube-apiserver"),
                    f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    f"--cert-dir={workdir / 'certs'}",
                    f"--token-auth-file={workdir / 'tokens.csv'}",
                    "--authorization-mode=RBAC",
                    # Service IPs are only allocated from this range: nothing routes there.
                    "--service-cluster-ip-range=10.96.0.0/16",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-account-key-file={workdir / 'service-account.pub'}",
                    f"--service-account-signing-key-file={key}",
                    "--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
                    "--enable-priority-and-fairness=false",
                    "--profiling=false",
                ],
                stdout=api_log,
                stderr=subprocess.STDOUT,
            )
        )
        server = f"https://127.0.0.1:{api_port}"
        _wait_ready(server, processes[-1], api_log_path, timeout=120)
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "e2e",
                            "cluster": {"server": server, "insecure-skip-tls-verify": True},
                        }
                    ],
                    "users": [{"name": "admin", "user": {"token": TOKEN}}],
                    "contexts": [{"name": context, "context": {"cluster": "e2e", "user": "admin"}}],
                    "current-context": context,
                }
            )
        )
        yield Cluster(server=server, kubeconfig=kubeconfig)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir / "etcd", ignore_errors=True)


GATEWAY_API_PATH = "gateway-api/v{version}/standard-install.yaml"
"""Where the repository server below also serves each pinned Gateway API release's CRD
manifest, which the e2e stacks download as they would from GitHub (`{version}` is the
release: components/gateway_api_crds.py)."""


@contextmanager
def chart_repository(workdir: Path) -> Iterator[str]:
    """Istio's packaged charts (every pinned version) as a Helm repository on 127.0.0.1,
    and the Gateway API's CRDs at `<url>/GATEWAY_API_PATH`."""
    root = workdir / "charts"
    root.mkdir(parents=True, exist_ok=True)
    for archive in (cache_dir() / "charts").glob("*/*.tgz"):
        shutil.copy(archive, root / archive.name)
    if (cache_dir() / "gateway-api").is_dir():
        shutil.copytree(cache_dir() / "gateway-api", root / "gateway-api")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    run([tool("helm"), "repo", "index", root, "--url", url]).check()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
