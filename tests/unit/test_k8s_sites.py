"""The k8s manifests give every Ray pod the sites' cookies (a Secret mounted read-only as the
file VIDSCRIBE_MEDIA__COOKIES_FILE names) and the download proxy (a Secret key, it may hold a
password); the example Secrets show both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parents[2] / "k8s"


def load_all(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc is not None]


def pod_specs() -> list[dict[str, Any]]:
    (rayservice,) = load_all("rayservice.yaml")
    cluster = rayservice["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [group["template"]["spec"] for group in groups]


def test_every_ray_pod_mounts_the_cookies_secret_where_the_setting_points() -> None:
    (configmap,) = load_all("configmap.yaml")
    cookies_file = Path(configmap["data"]["VIDSCRIBE_MEDIA__COOKIES_FILE"])
    for spec in pod_specs():
        volumes = {v["name"]: v for v in spec["volumes"]}
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == str(cookies_file.parent)]
        assert mount["readOnly"] is True
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == "vidscribe-cookies" and secret["optional"] is True
        assert secret["defaultMode"] == 0o440  # the image's user reads it through fsGroup, nobody else


def test_the_proxy_comes_from_the_secret() -> None:
    for spec in pod_specs():
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        ref = env["VIDSCRIBE_MEDIA__PROXY"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"], ref["optional"]) == ("vidscribe-secrets", "media-proxy", True)


def test_the_example_secrets_show_cookies_and_proxy() -> None:
    secrets = {doc["metadata"]["name"]: doc for doc in load_all("secrets.example.yaml")}
    assert "media-proxy" in secrets["vidscribe-secrets"]["stringData"]
    cookies = secrets["vidscribe-cookies"]["stringData"]["cookies.txt"]
    assert cookies.startswith("# Netscape HTTP Cookie File")
    assert all(len(line.split("\t")) == 7 for line in cookies.splitlines()[1:] if line)
