"""`python -m bootstrap.k8s_role_label`: the sidecar that labels its pod with the node's role.

Every 2 s it reads ``/v1/cluster`` from the StacksDB container of the same pod and, when the
role changed, patches the pod's ``stacksdb.io/role`` label through the Kubernetes API with
the pod's service account, so the ``stacksdb-leader`` Service always selects the leader.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
LABEL = "stacksdb.io/role"


def current_role(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/cluster", timeout=2) as answer:
        role: str = json.load(answer)["role"]
        return role


def label_pod(namespace: str, pod: str, role: str) -> None:
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    body = json.dumps({"metadata": {"labels": {LABEL: role}}}).encode()
    request = urllib.request.Request(
        f"https://{host}:{port}/api/v1/namespaces/{namespace}/pods/{pod}",
        data=body,
        method="PATCH",
        headers={
            "Authorization": f"Bearer {(ACCOUNT / 'token').read_text().strip()}",
            "Content-Type": "application/merge-patch+json",
        },
    )
    context = ssl.create_default_context(cafile=str(ACCOUNT / "ca.crt"))
    with urllib.request.urlopen(request, timeout=5, context=context):
        return


def main() -> None:
    namespace, pod = os.environ["POD_NAMESPACE"], os.environ["POD_NAME"]
    port = int(os.environ.get("STACKSDB_PORT", "8000"))
    labelled: str | None = None
    while True:
        try:
            role = current_role(port)
            if role != labelled:
                label_pod(namespace, pod, role)
                labelled = role
        except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
            print(f"role-label: {exc}", flush=True)
        time.sleep(2)


if __name__ == "__main__":
    main()
