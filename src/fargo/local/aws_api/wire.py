"""The wire protocols, driven by botocore's service models (`fargo.local.aws_api.models`).

    request = decode(protocol, body, query_params, operation_model)  # → plain Python values
    status, headers, body = encode(protocol, operation_model, answer)
    status, headers, body = encode_error(protocol, model, AwsError(...), request_id)

Protocols: ``json`` (JSON 1.1: ECS, CloudWatch Logs, ECR, Application Auto Scaling),
``smithy-rpc-v2-cbor`` (Cloud Map, as boto3 speaks it now; older clients use ``json``),
``query`` (form-encoded requests, XML answers: ELBv2). Timestamps are epoch seconds in
JSON, CBOR tag 1 in CBOR, ISO 8601 in XML; blobs base64 but in CBOR.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import cbor2
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from fargo.local.aws_api.errors import AwsError

JSON = "json"
CBOR = "smithy-rpc-v2-cbor"
QUERY = "query"

CONTENT_TYPES = {JSON: "application/x-amz-json-1.1", CBOR: "application/cbor", QUERY: "text/xml"}


# -- requests --------------------------------------------------------------------------------


def decode(
    protocol: str, body: bytes, form: Mapping[str, str], operation: OperationModel
) -> dict[str, Any]:
    """The request's input parameters as plain values (the shape botocore validates)."""
    if protocol == QUERY:
        shape = operation.input_shape
        return _from_query(shape, form, "") or {} if shape is not None else {}
    if not body:
        return {}
    try:
        value = cbor2.loads(body) if protocol == CBOR else json.loads(body)
    except (ValueError, cbor2.CBORDecodeError) as err:
        raise AwsError("SerializationException", f"the request body is not valid: {err}") from None
    if not isinstance(value, dict):
        raise AwsError("SerializationException", "the request body is not an object")
    return value


def _from_query(shape: Shape, form: Mapping[str, str], key: str) -> Any:
    """A value of ``shape`` from the form fields under ``key`` (``Names.member.1``...)."""
    if isinstance(shape, StructureShape):
        found = {}
        for name, member in shape.members.items():
            child = member.serialization.get("name", name)
            value = _from_query(member, form, f"{key}.{child}" if key else child)
            if value is not None:
                found[name] = value
        return found if found or not key else (found if _under(form, key) else None)
    if isinstance(shape, ListShape):
        if form.get(key) == "":
            return []  # how the query protocol sends an empty list
        item = shape.member.serialization.get("name", "member")
        prefix = key if shape.serialization.get("flattened") else f"{key}.{item}"
        items: list[Any] = []
        while _under(form, f"{prefix}.{len(items) + 1}"):
            items.append(_from_query(shape.member, form, f"{prefix}.{len(items) + 1}"))
        return items if items else None
    if isinstance(shape, MapShape):
        entries: dict[str, Any] = {}
        index = 1
        while _under(form, f"{key}.entry.{index}"):
            name = form.get(f"{key}.entry.{index}.key", "")
            entries[name] = _from_query(shape.value, form, f"{key}.entry.{index}.value")
            index += 1
        return entries if entries else None
    if key not in form:
        return None
    return _scalar(shape, form[key], key)


def _under(form: Mapping[str, str], key: str) -> bool:
    return key in form or any(k.startswith(key + ".") for k in form)


def _scalar(shape: Shape, text: str, key: str) -> Any:
    try:
        if shape.type_name in ("integer", "long"):
            return int(text)
        if shape.type_name in ("float", "double"):
            return float(text)
        if shape.type_name == "boolean":
            return text.lower() == "true"
        if shape.type_name == "timestamp":
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AwsError("ValidationError", f"{key}: {text!r} is not a {shape.type_name}") from None
    return text


# -- answers ---------------------------------------------------------------------------------


def encode(
    protocol: str, operation: OperationModel, answer: Mapping[str, Any], request_id: str
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a successful answer."""
    shape = operation.output_shape
    headers = {"x-amzn-RequestId": request_id, "Content-Type": CONTENT_TYPES[protocol]}
    if protocol == QUERY:
        return 200, headers, _xml_answer(operation, shape, answer, request_id)
    value = _plain(shape, answer, cbor=protocol == CBOR) if shape is not None else {}
    if protocol == CBOR:
        headers["smithy-protocol"] = "rpc-v2-cbor"
        return 200, headers, cbor2.dumps(value, datetime_as_timestamp=True)
    return 200, headers, json.dumps(value).encode()


def encode_error(
    protocol: str, model: ServiceModel | None, error: AwsError, request_id: str
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an error answer, as the service's protocol shapes it."""
    headers = {"x-amzn-RequestId": request_id, "Content-Type": CONTENT_TYPES[protocol]}
    if protocol == QUERY:
        namespace = model.metadata.get("xmlNamespace", "") if model else ""
        root = ElementTree.Element("ErrorResponse", xmlns=namespace)
        node = ElementTree.SubElement(root, "Error")
        ElementTree.SubElement(node, "Type").text = "Sender" if error.sender_fault else "Receiver"
        ElementTree.SubElement(node, "Code").text = error.code
        ElementTree.SubElement(node, "Message").text = error.message
        ElementTree.SubElement(root, "RequestId").text = request_id
        return error.status, headers, ElementTree.tostring(root, xml_declaration=False)
    body = {"__type": error.code, "message": error.message}
    headers["x-amzn-ErrorType"] = error.code
    if protocol == CBOR:
        headers["smithy-protocol"] = "rpc-v2-cbor"
        return error.status, headers, cbor2.dumps(body)
    return error.status, headers, json.dumps(body).encode()


def _plain(shape: Shape, value: Any, *, cbor: bool) -> Any:
    """``value`` as JSON or CBOR carries a value of ``shape``; keys the shape lacks are
    refused (a handler's mistake, not something to send)."""
    if isinstance(shape, StructureShape):
        unknown = set(value) - set(shape.members)
        if unknown:
            raise ValueError(f"{shape.name} has no member(s) {sorted(unknown)}")
        return {
            k: _plain(shape.members[k], v, cbor=cbor) for k, v in value.items() if v is not None
        }
    if isinstance(shape, ListShape):
        return [_plain(shape.member, v, cbor=cbor) for v in value]
    if isinstance(shape, MapShape):
        return {k: _plain(shape.value, v, cbor=cbor) for k, v in value.items()}
    if shape.type_name == "timestamp":
        moment = _moment(value)
        return moment if cbor else moment.timestamp()
    if shape.type_name == "blob":
        data = value.encode() if isinstance(value, str) else bytes(value)
        return data if cbor else base64.b64encode(data).decode()
    return value


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _xml_answer(
    operation: OperationModel, shape: StructureShape | None, answer: Mapping[str, Any], rid: str
) -> bytes:
    namespace = operation.service_model.metadata.get("xmlNamespace", "")
    root = ElementTree.Element(f"{operation.name}Response", xmlns=namespace)
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{operation.name}Result")
        _xml(root, wrapper, shape, answer)
    metadata = ElementTree.SubElement(root, "ResponseMetadata")
    ElementTree.SubElement(metadata, "RequestId").text = rid
    return ElementTree.tostring(root, xml_declaration=False)


def _xml(parent: ElementTree.Element, name: str, shape: Shape, value: Any) -> None:
    if isinstance(shape, StructureShape):
        node = ElementTree.SubElement(parent, name)
        unknown = set(value) - set(shape.members)
        if unknown:
            raise ValueError(f"{shape.name} has no member(s) {sorted(unknown)}")
        for key, member in shape.members.items():
            if value.get(key) is not None:
                _xml(node, member.serialization.get("name", key), member, value[key])
        return
    if isinstance(shape, ListShape):
        item = shape.member.serialization.get("name", "member")
        if shape.serialization.get("flattened"):
            for entry in value:
                _xml(parent, name, shape.member, entry)
            return
        node = ElementTree.SubElement(parent, name)
        for entry in value:
            _xml(node, item, shape.member, entry)
        return
    if isinstance(shape, MapShape):
        node = ElementTree.SubElement(parent, name)
        for key, entry in value.items():
            pair = ElementTree.SubElement(node, "entry")
            ElementTree.SubElement(pair, "key").text = str(key)
            _xml(pair, "value", shape.value, entry)
        return
    ElementTree.SubElement(parent, name).text = _xml_text(shape, value)


def _xml_text(shape: Shape, value: Any) -> str:
    if shape.type_name == "boolean":
        return "true" if value else "false"
    if shape.type_name == "timestamp":
        return _moment(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if shape.type_name == "blob":
        data = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(data).decode()
    return str(value)
