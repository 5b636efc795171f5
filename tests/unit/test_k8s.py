"""The Kubernetes deployment (k8s/) and the Dockerfile, checked offline.

Schemas: built-in kinds against Kubernetes' own (kubernetes-validate, strict); the
RayService against KubeRay's CRD schema (k8s/schema/, made strict the way `kubectl apply`
rejects unknown fields), its pod templates as core/v1 PodTemplateSpecs; the Serve config
against Ray's ServeDeploySchema.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from actors.speech.bundled_model import MODEL_DIRNAME
from serve_app.cli.serve import HEAD_RESOURCE, WORKER_NICENESS
from serve_app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
K8S_VERSION = "1.29"  # the oldest Kubernetes the manifests claim to work on
NOT_APPLIED = {"kustomization.yaml", "secrets.example.yaml"}
SECRET_ENV = {  # env var -> key in the Secret vidscribe-secrets
    "VIDSCRIBE_API_TOKENS": "api-tokens",
    "VIDSCRIBE_LLM__API_KEY": "llm-api-key",
    "VIDSCRIBE_WECOM__WEBHOOK_URL": "wecom-webhook-url",
    "VIDSCRIBE_WECOM_BOT__SECRET": "wecom-bot-secret",
}
DEPLOYMENTS = {"Gateway", "Store", "LLMSender", "Transcriber"}
SINGLETONS = {"Store", "LLMSender"}

Obj = dict[str, Any]


def load_all(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def rayservice() -> Obj:
    (doc,) = load_all(K8S / "rayservice.yaml")
    return doc


@pytest.fixture(scope="module")
def configmap() -> dict[str, str]:
    (doc,) = load_all(K8S / "configmap.yaml")
    return doc["data"]


def cluster(rs: Obj) -> Obj:
    return rs["spec"]["rayClusterConfig"]


def groups(rs: Obj) -> dict[str, Obj]:
    """Head and worker groups by name ('head', 'cpu', 'gpu')."""
    spec = cluster(rs)
    return {"head": spec["headGroupSpec"], **{g["groupName"]: g for g in spec["workerGroupSpecs"]}}


def ray_container(group: Obj) -> Obj:
    return group["template"]["spec"]["containers"][0]  # KubeRay: the first container runs Ray


def serve_app_config(config: Obj) -> dict[str, Obj]:
    (app,) = config["applications"]
    return {d["name"]: d for d in app["deployments"]}


# ---------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------


def strict(schema: Any) -> Any:
    """The schema with unknown fields rejected wherever the API server would prune them."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


RAYSERVICE_SCHEMA = strict(json.loads((K8S / "schema" / "rayservice.ray.io-v1.json").read_text()))


def validate(obj: Obj) -> None:
    """Raise if `obj` does not validate against its kind's schema."""
    if obj["kind"] == "RayService":
        assert obj["apiVersion"] == "ray.io/v1"
        jsonschema.Draft4Validator(RAYSERVICE_SCHEMA).validate(obj)
        # The parts the CRD schema leaves open, against Kubernetes' own schemas.
        for name, group in groups(obj).items():
            pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}}
            kubernetes_validate.validate({**pod_template, "template": group["template"]}, K8S_VERSION, strict=True)
        return
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_manifest_validates_against_its_schema(path: Path) -> None:
    docs = load_all(path)
    assert docs
    for doc in docs:
        validate(doc)


def test_the_schemas_catch_mistakes(rayservice: Obj) -> None:
    typo = copy.deepcopy(rayservice)
    typo["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParam"] = {}
    with pytest.raises(jsonschema.ValidationError, match="rayStartParam"):
        validate(typo)
    bad_pod = copy.deepcopy(rayservice)
    ray_container(groups(bad_pod)["cpu"])["resources"]["limit"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="limit"):
        validate(bad_pod)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its kustomize) is not installed")
def test_kustomize_build_validates_and_sets_namespace_and_images() -> None:
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True, timeout=60)
    built = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    kinds = sorted(doc["kind"] for doc in built)
    assert kinds == ["ConfigMap", "Namespace", "PersistentVolumeClaim", "RayService"]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    wanted_images = {f"{i['newName']}:{i['newTag']}" for i in kustomization["images"]}
    for doc in built:
        validate(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "vidscribe"
        if doc["kind"] == "RayService":
            images = {ray_container(g)["image"] for g in groups(doc).values()}
            assert images <= wanted_images


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "vidscribe"
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifest_files()} - NOT_APPLIED
    assert all((K8S / name).is_file() for name in listed)
    namespaces = [doc for name in listed for doc in load_all(K8S / name) if doc["kind"] == "Namespace"]
    assert [ns["metadata"]["name"] for ns in namespaces] == ["vidscribe"]


# ---------------------------------------------------------------------------------------
# The Serve config
# ---------------------------------------------------------------------------------------


def test_serve_config_v2_is_ray_config(rayservice: Obj) -> None:
    text = (ROOT / "ray_config.yaml").read_text()
    assert rayservice["spec"]["serveConfigV2"] == text  # a literal copy, comments and all
    assert yaml.safe_load(rayservice["spec"]["serveConfigV2"]) == yaml.safe_load(text)
    check = subprocess.run(
        [sys.executable, str(K8S / "sync_serve_config.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stderr


def test_sync_script_rewrites_a_drifted_block() -> None:
    sys.path.insert(0, str(K8S))
    try:
        import sync_serve_config
    finally:
        sys.path.remove(str(K8S))
    manifest = (K8S / "rayservice.yaml").read_text()
    config = (ROOT / "ray_config.yaml").read_text()
    drifted = manifest.replace("max_ongoing_requests: 2\n", "max_ongoing_requests: 3\n", 1)
    assert drifted != manifest
    assert sync_serve_config.render(drifted, config) == manifest
    assert sync_serve_config.render(manifest, config) == manifest


def test_serve_configs_validate_with_rays_schema(rayservice: Obj) -> None:
    for config in (
        yaml.safe_load((ROOT / "ray_config.yaml").read_text()),
        yaml.safe_load(rayservice["spec"]["serveConfigV2"]),
    ):
        parsed = ServeDeploySchema.model_validate(config)
        (app,) = parsed.applications
        assert app.import_path == "serve_app.app:build_app"
        assert {d.name for d in app.deployments} == DEPLOYMENTS


def test_config_names_the_apps_deployments() -> None:
    # Serve rejects a config that names a deployment the app does not have.
    from serve_app import app

    assert callable(app.build_app)
    assert set(app.DEPLOYMENTS) == DEPLOYMENTS


# ---------------------------------------------------------------------------------------
# Placement
# ---------------------------------------------------------------------------------------


def ray_resources(rs: Obj) -> dict[str, dict[str, float]]:
    """Each group's Ray resources as the Ray autoscaler reads them from the manifest."""
    from ray.autoscaler._private.kuberay.autoscaling_config import _get_ray_resources_from_group_spec

    return {name: _get_ray_resources_from_group_spec(g, name == "head") for name, g in groups(rs).items()}


def test_singletons_are_pinned_to_the_head_resource(rayservice: Obj) -> None:
    deployments = serve_app_config(yaml.safe_load(rayservice["spec"]["serveConfigV2"]))
    pinned = {name for name, d in deployments.items() if HEAD_RESOURCE in d["ray_actor_options"].get("resources", {})}
    assert pinned == SINGLETONS  # the Gateway may run anywhere; Transcribers are not pinned
    demand = sum(deployments[name]["ray_actor_options"]["resources"][HEAD_RESOURCE] for name in SINGLETONS)
    resources = ray_resources(rayservice)
    assert 0 < demand <= resources["head"][HEAD_RESOURCE] == 1
    assert [name for name, r in resources.items() if HEAD_RESOURCE in r] == ["head"]


def test_transcribers_fit_on_the_workers_and_not_on_the_head(rayservice: Obj) -> None:
    deployments = serve_app_config(yaml.safe_load(rayservice["spec"]["serveConfigV2"]))
    transcriber = deployments["Transcriber"]["ray_actor_options"]
    resources = ray_resources(rayservice)
    singletons_cpus = sum(deployments[name]["ray_actor_options"]["num_cpus"] for name in SINGLETONS)
    assert resources["head"]["CPU"] - singletons_cpus < transcriber["num_cpus"]
    assert resources["cpu"]["CPU"] >= transcriber["num_cpus"]
    assert resources["gpu"]["CPU"] >= transcriber["num_cpus"]
    assert resources["gpu"]["GPU"] == 1
    assert "GPU" not in resources["head"] and "GPU" not in resources["cpu"]
    # No GPU asked: the same config runs on clusters without GPUs; a GPU pod's GPU is used anyway.
    assert not transcriber.get("num_gpus")


def test_gpu_group_requests_a_gpu_and_tolerates_the_taint(rayservice: Obj, configmap: dict[str, str]) -> None:
    by_name = groups(rayservice)
    gpu = by_name["gpu"]
    resources = ray_container(gpu)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu["template"]["spec"][
        "tolerations"
    ]
    assert gpu["template"]["spec"]["nodeSelector"]
    env = {e["name"]: e.get("value") for e in ray_container(gpu)["env"]}
    assert env["RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO"] == "0"  # Ray must not hide the GPU from the replicas
    assert configmap["VIDSCRIBE_ASR__DEVICE"] == "auto"
    for name in ("head", "cpu"):
        assert "nvidia.com/gpu" not in json.dumps(ray_container(by_name[name])["resources"])


def test_worker_groups_autoscale(rayservice: Obj) -> None:
    spec = cluster(rayservice)
    assert spec["enableInTreeAutoscaling"] is True
    for group in spec["workerGroupSpecs"]:
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert groups(rayservice)["cpu"]["maxReplicas"] >= 1


def test_the_data_volume_is_on_the_head_only(rayservice: Obj, configmap: dict[str, str]) -> None:
    (pvc,) = load_all(K8S / "pvc.yaml")
    data_dir = configmap["VIDSCRIBE_DATA_DIR"]
    for name, group in groups(rayservice).items():
        volumes = {v["name"]: v for v in group["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in ray_container(group)["volumeMounts"]}
        volume = volumes[mounts[data_dir]]
        if name == "head":
            assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
        else:  # scratch space for downloads; never the claim
            assert "emptyDir" in volume
            assert not any("persistentVolumeClaim" in v for v in volumes.values())


def test_upgrades_never_run_two_clusters(rayservice: Obj) -> None:
    # Two heads could not share the ReadWriteOnce store, and two LLMSenders would deliver twice.
    assert rayservice["spec"]["upgradeStrategy"] == {"type": "None"}


# ---------------------------------------------------------------------------------------
# Pods: resources, settings, secrets, probes
# ---------------------------------------------------------------------------------------

_UNITS = {"": 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}


def quantity(value: str | int | float) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value)).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def test_every_container_has_requests_and_limits(rayservice: Obj) -> None:
    containers = [ray_container(g) for g in groups(rayservice).values()]
    containers.append({"name": "autoscaler", **cluster(rayservice)["autoscalerOptions"]})
    for container in containers:
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        for resource in ("cpu", "memory"):
            assert quantity(requests[resource]) <= quantity(limits[resource]), (container["name"], resource)


def all_containers(rayservice: Obj) -> Iterator[Obj]:
    for group in groups(rayservice).values():
        yield from group["template"]["spec"]["containers"]


def test_every_ray_pod_gets_the_same_settings(rayservice: Obj) -> None:
    # Serve may build the app (and read the environment) on any node.
    def settings_env(container: Obj) -> tuple[str, str]:
        env = [e for e in container["env"] if e["name"].startswith("VIDSCRIBE_")]
        return json.dumps(container["envFrom"], sort_keys=True), json.dumps(env, sort_keys=True)

    assert len({settings_env(c) for c in all_containers(rayservice)}) == 1


def test_secrets_are_referenced_never_inlined(rayservice: Obj, configmap: dict[str, str]) -> None:
    example = {doc["metadata"]["name"]: doc for doc in load_all(K8S / "secrets.example.yaml")}
    for container in all_containers(rayservice):
        env = {e["name"]: e for e in container["env"]}
        for name, key in SECRET_ENV.items():
            assert "value" not in env[name]
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == ("vidscribe-secrets", key)
            assert key in example["vidscribe-secrets"]["stringData"]
        assert env["VIDSCRIBE_API_TOKENS"]["valueFrom"]["secretKeyRef"].get("optional") is not True
        assert all(
            "valueFrom" in e or not re.search("TOKEN|KEY|SECRET|PASSWORD|WEBHOOK", e["name"]) for e in env.values()
        )
    assert not set(configmap) & set(SECRET_ENV)
    assert not any(re.search("TOKEN|KEY|SECRET|PASSWORD|WEBHOOK", name) for name in configmap)
    auth = cluster(rayservice)["authOptions"]
    assert auth["mode"] == "token"
    assert "auth_token" in example[auth["secretName"]]["stringData"]  # the key KubeRay reads
    for path in manifest_files():
        if path.name not in NOT_APPLIED:
            assert all(doc["kind"] != "Secret" for doc in load_all(path)), path.name


def test_configmap_holds_valid_settings(configmap: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert {name: configmap[name] for name in WORKER_NICENESS} == WORKER_NICENESS  # as `vidscribe serve`
    for name in set(configmap) - set(WORKER_NICENESS):
        field, *nested = name.removeprefix("VIDSCRIBE_").lower().split("__")
        assert field in Settings.model_fields, name  # extra="ignore" would hide a typo
        if nested:
            group = Settings.model_fields[field].annotation
            assert nested[0] in group.model_fields, name  # type: ignore[union-attr]
    for name, value in configmap.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.data_dir == Path("/data")
    assert settings.asr.model == f"/opt/vidscribe/models/{MODEL_DIRNAME}"


def test_probes(rayservice: Obj, tmp_path: Path) -> None:
    from actors.storage.client import LocalStoreClient
    from actors.storage.store import Store
    from serve_app.http.app import create_app
    from serve_app.settings import Settings
    from tests.support.local_gateway import RecordingWorkQueue

    with Store(tmp_path / "vidscribe.db") as store:
        app = create_app(Settings(data_dir=tmp_path), LocalStoreClient(store), RecordingWorkQueue())
    serve_port = yaml.safe_load(rayservice["spec"]["serveConfigV2"])["http_options"]["port"]
    assert "/healthz" in app.openapi()["paths"]  # the path the worker probes ask for
    for name, group in groups(rayservice).items():
        container = ray_container(group)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["serve"] == serve_port
        assert container["livenessProbe"]["httpGet"] == {"path": "/api/healthz", "port": 52365}
        readiness = container["readinessProbe"]
        if name == "head":  # never the app: KubeRay deploys it only once the head is ready
            assert readiness["httpGet"] == {"path": "/api/healthz", "port": 52365}
        else:
            command = " ".join(readiness["exec"]["command"])
            assert f"localhost:{serve_port}/-/healthz" in command  # KubeRay's Serve proxy check
            assert f"localhost:{serve_port}/healthz" in command  # the app's own


def test_ray_version_is_the_pinned_one(rayservice: Obj) -> None:
    import ray

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [re.sub(r"^ray\[serve\]==", "", d) for d in dependencies if d.startswith("ray[")]
    assert cluster(rayservice)["rayVersion"] == pin == ray.__version__


# ---------------------------------------------------------------------------------------
# Dockerfile (no docker here: its statements are checked, and its Python steps are run)
# ---------------------------------------------------------------------------------------

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def python_steps() -> list[str]:
    """The `python -c "..."` programs of the Dockerfile's RUN steps."""
    steps = re.findall(r'python -c "([^"]+)"', DOCKERFILE)
    assert all("$" not in s and "`" not in s for s in steps)  # the shell passes them verbatim
    return steps


def test_dockerfile_statements(rayservice: Obj, configmap: dict[str, str]) -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE and requires == ">=3.11"
    assert "wget" in DOCKERFILE  # KubeRay's exec probes
    model = re.search(r"VIDSCRIBE_ASR__MODEL=(\S+)", DOCKERFILE).group(1)  # type: ignore[union-attr]
    assert model == f"/opt/vidscribe/models/{MODEL_DIRNAME}" == configmap["VIDSCRIBE_ASR__MODEL"]
    assert "nvidia-cublas-cu12" in DOCKERFILE and "nvidia-cudnn-cu12" in DOCKERFILE
    user = re.findall(r"^USER (\d+):(\d+)$", DOCKERFILE, re.MULTILINE)
    assert user == [("1000", "1000")]
    for group in groups(rayservice).values():
        context = group["template"]["spec"]["securityContext"]
        assert (context["runAsUser"], context["fsGroup"], context["runAsNonRoot"]) == (1000, 1000, True)


def test_dockerignore_lets_through_what_the_dockerfile_copies() -> None:
    allowed = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    copied = set()
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            copied.update(line.split()[1:-1])
    assert copied == allowed
    assert all((ROOT / path).exists() for path in copied)


def test_dockerfile_python_steps_run(tmp_path: Path) -> None:
    requirements_step, bake_step = python_steps()
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", requirements_step], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    )
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert out.stdout.splitlines() == dependencies
    image_home = tmp_path / "opt-vidscribe"
    out = subprocess.run(
        [sys.executable, "-c", bake_step.replace("/opt/vidscribe", str(image_home))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    model_dir = image_home / "models" / MODEL_DIRNAME
    assert out.stdout.strip() == str(model_dir)
    assert (model_dir / "model.bin").stat().st_size > 100 * 2**20
    assert (model_dir / "config.json").is_file()
    shutil.rmtree(image_home)  # 145 MB; pytest keeps old temp dirs around


def test_the_serve_config_ships_inside_the_package() -> None:
    from serve_app.serve_config import DEFAULT_CONFIG

    # One file: the checkout's ray_config.yaml is a link to the package's copy.
    assert DEFAULT_CONFIG.parent == ROOT / "serve_app"
    assert (ROOT / "ray_config.yaml").resolve() == DEFAULT_CONFIG
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert DEFAULT_CONFIG.name in package_data["serve_app"]
