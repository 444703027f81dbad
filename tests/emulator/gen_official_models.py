"""Regenerate ``official_models.json``: the official Genesys models of every emulator route.

Run ``make official-models`` (it installs the ``bench`` extra, which holds the official SDK,
PureCloudPlatformClientV2). For every Platform API route the emulator serves, it finds the SDK
operation with the same method and path and records its response model, the content types it
consumes, and then every model reachable from those (plus ``ErrorBody`` and the notification
topics' models): each model's JSON field names and types (``swagger_types`` and
``attribute_map``) and enum values (each setter's ``allowed_values``). The SDK code marks no field
required; the required fields come from ``official_required.json``, read from the SDK's own model
docs (see its ``source``). Tests read the extract and never import the SDK.
"""

import ast
import json
import re
import sys
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from starlette.routing import Route

from gcdial.emulator import EmulatorConfig, create_app

HERE = Path(__file__).resolve().parent
EXTRACT = HERE / "official_models.json"
REQUIRED = HERE / "official_required.json"
PACKAGE = "PureCloudPlatformClientV2"
# The models of the notification topics the emulator publishes. The Python SDK has no
# topic -> model table; these are the names the other official SDKs' notification handlers use
# (e.g. platform-client-sdk-dotnet's NotificationHandler): UNCONFIRMED for the calls topic.
TOPICS = {
    "v2.users.{id}.conversations.calls": "ConversationCallEventTopicCallConversation",
    "v2.conversations.calls.{id}": "ConversationCallEventTopicCallConversation",
    "v2.users.{id}.presence": "PresenceEventUserPresence",
    "v2.users.{id}.routingStatus": "UserRoutingStatusUserRoutingStatus",
}
ALWAYS = ("ErrorBody",)
_METHOD = re.compile(
    r"resource_path = '(?P<path>[^']+)'.*?select_header_content_type\(\[(?P<consumes>[^\]]*)\]\)"
    r".*?call_api\(resource_path, '(?P<method>[A-Z]+)'.*?response_type=(?P<response>'\w+'|None)",
    re.S,
)
_PARAM = re.compile(r"\{[^}]*\}")
_MODEL_REF = re.compile(r"[A-Z]\w*")


def _shape(path: str) -> str:
    return _PARAM.sub("{}", path)


def sdk_operations(package: Path) -> dict[str, dict[str, Any]]:
    """``"METHOD /path"`` (parameters as ``{}``) → the SDK operation facts, for every API."""
    operations: dict[str, dict[str, Any]] = {}
    for module in sorted((package / "apis").glob("*_api.py")):
        source = module.read_text()
        chunks = re.split(r"\n    def (\w+)\(self", source)
        for name, body in zip(chunks[1::2], chunks[2::2], strict=True):
            match = _METHOD.search(body)
            if match is None:
                continue
            response = match["response"].strip("'")
            operations[f"{match['method']} {_shape(match['path'])}"] = {
                "sdk": f"{module.stem}.{name}",
                "path": match["path"],
                "response": None if response == "None" else response,
                "consumes": [c.strip(" '") for c in match["consumes"].split(",") if c.strip()],
            }
    return operations


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _model_file(package: Path, model: str) -> Path:
    path = package / "models" / f"{_snake(model)}.py"
    if not path.exists():
        candidates = {p.stem.replace("_", ""): p for p in (package / "models").glob("*.py")}
        path = candidates[model.lower()]
    return path


def read_model(package: Path, model: str) -> dict[str, Any]:
    """A model's JSON fields with their SDK types, and its enums, from the model's source."""
    tree = ast.parse(_model_file(package, model).read_text())
    types: dict[str, str] = {}
    names: dict[str, str] = {}
    enums: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            target = node.targets[0].attr
            if target == "swagger_types":
                types = ast.literal_eval(node.value)
            elif target == "attribute_map":
                names = ast.literal_eval(node.value)
        if isinstance(node, ast.FunctionDef) and any(
            isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list
        ):
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Assign)
                    and isinstance(inner.targets[0], ast.Name)
                    and inner.targets[0].id == "allowed_values"
                ):
                    enums[node.name] = ast.literal_eval(inner.value)
    fields = {names[attr]: kind for attr, kind in types.items()}
    return {"fields": fields, "enums": {names[attr]: values for attr, values in enums.items()}}


def _referenced(kind: str) -> list[str]:
    primitives = {"str", "int", "float", "bool", "datetime", "date", "object", "list", "dict"}
    return [m for m in _MODEL_REF.findall(kind) if m not in primitives]


def emulator_routes() -> list[tuple[str, str]]:
    """``(METHOD, path template)`` of every Platform API route the emulator serves."""
    app = create_app(EmulatorConfig())
    served = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            methods = set(route.methods or ())
            if "GET" in methods:
                methods.discard("HEAD")  # Starlette's automatic HEAD, not a route of its own
            served += [(method, route.path) for method in sorted(methods)]
    return served


def build(package: Path, required: dict[str, Any]) -> dict[str, Any]:
    """The extract, as a JSON-ready dict."""
    sdk = sdk_operations(package)
    operations: dict[str, Any] = {}
    for method, path in emulator_routes():
        found = sdk.get(f"{method} {_shape(path)}")
        if found is None:
            raise SystemExit(f"no SDK operation for {method} {path}: is the route real?")
        operations[f"{method} {path}"] = found
    todo = [
        *ALWAYS,
        *TOPICS.values(),
        *(o["response"] for o in operations.values() if o["response"]),
    ]
    models: dict[str, Any] = {}
    while todo:
        model = todo.pop()
        if model in models:
            continue
        facts = read_model(package, model)
        facts["required"] = sorted(required["models"].get(model, []))
        models[model] = facts
        for kind in facts["fields"].values():
            todo += _referenced(kind)
    missing = sorted(
        (set(required["models"]) | set(required["read_without_required"])) - set(models)
    )
    if missing:
        raise SystemExit(f"official_required.json names models no route reaches: {missing}")
    return {
        "source": {
            "package": PACKAGE,
            "version": metadata.version(PACKAGE),
            "fields_and_enums": "swagger_types, attribute_map and allowed_values of the SDK models",
            "required": required["source"],
            "required_read": sorted([*required["read_without_required"], *required["models"]]),
            "topics": "TOPICS in tests/emulator/gen_official_models.py (UNCONFIRMED for calls)",
            "generator": "tests/emulator/gen_official_models.py (make official-models)",
        },
        "operations": dict(sorted(operations.items())),
        "topics": TOPICS,
        "models": dict(sorted(models.items())),
    }


def main() -> None:
    """Write the extract next to this file."""
    package = Path(str(resources.files(PACKAGE)))
    required = json.loads(REQUIRED.read_text())
    extract = build(package, required)
    EXTRACT.write_text(json.dumps(extract, indent=1, sort_keys=False) + "\n")
    print(
        f"wrote {EXTRACT} ({len(extract['models'])} models, {PACKAGE} "
        f"{extract['source']['version']})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
