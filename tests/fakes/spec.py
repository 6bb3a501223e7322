"""The providers' published specs (``specs/``, see its README) as JSON Schema validators."""
import json
from pathlib import Path

import jsonschema

SPECS = Path(__file__).parent / "specs"


def load(name):
    return json.loads((SPECS / name).read_text())


def validator(schema, root, definitions_key):
    """A validator for ``schema`` whose ``$ref``s resolve in ``root[definitions_key]``."""
    whole = {**schema, definitions_key: root[definitions_key]}
    return jsonschema.Draft4Validator(_nullable_as_null(whole))


def problems(validator_, instance):
    """Each way ``instance`` breaks the schema, as ``where: what``; [] when it holds."""
    return [f"{'.'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
            for e in sorted(validator_.iter_errors(instance), key=str)]


def _nullable_as_null(node):
    """OpenAPI 3.0's ``nullable: true`` in JSON Schema terms: null is also allowed."""
    if isinstance(node, list):
        return [_nullable_as_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_as_null(value) for key, value in node.items()}
    if node.pop("nullable", False):
        node = {"anyOf": [{k: v for k, v in node.items() if k != "description"},
                          {"type": "null"}]}
    return node
