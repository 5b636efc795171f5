"""Derive k8s/schema/rayservice.ray.io-v1.json from KubeRay's RayService CRD.

    python k8s/schema/extract_rayservice_schema.py ray.io_rayservices.yaml KUBERAY_VERSION

The input is `ray-operator/config/crd/bases/ray.io_rayservices.yaml` of a KubeRay release
(Apache-2.0). We keep the `v1` openAPIV3Schema, drop `status`, and replace the embedded
core/v1 PodTemplateSpec and Service schemas by "any object": tests/unit/test_k8s.py validates
those parts against Kubernetes' own schemas (kubernetes-validate), which is stricter and
saves ~150 KB here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent / "rayservice.ray.io-v1.json"
# Fields whose values are core/v1 objects checked elsewhere, by name of the property.
CORE_OBJECTS = {"template": "PodTemplateSpec", "serveService": "Service", "headService": "Service"}


def extract(crd: dict[str, Any], kuberay_version: str) -> dict[str, Any]:
    """The trimmed v1 schema of a RayService CRD document."""
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    schema["properties"].pop("status", None)
    _replace_core_objects(schema)
    schema["$comment"] = (
        f"RayService ray.io/v1 schema from KubeRay {kuberay_version} "
        "(ray-operator/config/crd/bases/ray.io_rayservices.yaml, Apache-2.0), "
        "status dropped, core/v1 objects replaced; regenerate with k8s/schema/extract_rayservice_schema.py"
    )
    return schema


def _replace_core_objects(node: Any) -> None:
    if isinstance(node, dict):
        for name, sub in list(node.get("properties", {}).items()):
            if name in CORE_OBJECTS:
                node["properties"][name] = {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "x-vidscribe-core-kind": CORE_OBJECTS[name],
                }
            else:
                _replace_core_objects(sub)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                _replace_core_objects(node[key])


def main(argv: list[str]) -> int:
    """Write the trimmed schema next to this script."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    crd = yaml.safe_load(Path(argv[0]).read_text())
    OUT.write_text(json.dumps(extract(crd, argv[1]), indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
