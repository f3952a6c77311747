"""HTTP helpers shared by the API handler and the virtual workspaces: Status and JSON responses, request bodies."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from tmc.apimachinery import errors
from tmc.apimachinery.field_validation import go_quote
from tmc.apimachinery.protobuf import ProtobufCodec
from tmc.apiserver import bodies
from tmc.registry.service import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH

MAX_BODY_BYTES = 3 * 1024 * 1024  # upstream's request body limit; objects themselves are capped at 1.5 MiB
JSON = "application/json"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
PROTOBUF = "application/vnd.kubernetes.protobuf"
# aiohttp decodes these before the handler reads the body, and counts the decoded bytes against the body limit.
DECODED_ENCODINGS = ("gzip", "deflate", "identity")


def status_response(err: errors.StatusError) -> web.Response:
    return web.Response(status=err.code, body=orjson.dumps(err.to_status()), content_type=JSON)


def path_not_found(path: str) -> errors.StatusError:
    return errors.StatusError(404, "NotFound", f"the server could not find the requested resource ({path})")


def warning_header(warnings: list[str]) -> str:
    """RFC 7234 warnings as kube-apiserver writes them: the text quoted with quotes, backslashes and non-printable
    characters escaped, so no text (an unknown field's name, say) can make a header the HTTP layer refuses."""
    return ", ".join(f"299 - {go_quote(w)}" for w in warnings)


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {"Warning": warning_header(warnings)} if warnings else None
    return web.Response(status=status, body=orjson.dumps(obj), content_type=JSON, headers=headers)


def raw_response(body: bytes, content_type: str) -> web.Response:
    return web.Response(body=body, headers={"Content-Type": content_type})


async def read_raw(request: web.Request) -> bytes:
    """The body within the size limit, decoded from its Content-Encoding. Its parser enforces the depth limit
    (parse_json_body, the registry's decode_patch, the YAML composer), so each body is scanned once."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in DECODED_ENCODINGS:
        raise errors.unsupported_media_type(
            f"unsupported Content-Encoding {encoding!r}; request bodies may be sent as {', '.join(DECODED_ENCODINGS)}"
        )
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise errors.too_large(f"the request body is {request.content_length} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.too_large(f"the request body is larger than {MAX_BODY_BYTES} bytes") from None
    except RequestPayloadError as e:
        # A body that does not decode as its Content-Encoding says (or a broken chunked encoding).
        raise errors.bad_request(f"the request body could not be read: {e}") from None
    return raw


async def read_body(request: web.Request) -> Any:
    """The decoded body of a create or update: JSON, YAML or protobuf; patch media types belong to PATCH only."""
    raw = await read_raw(request)
    ctype = request.content_type
    if ctype in YAML_TYPES:
        try:
            return await bodies.parse_yaml_body(raw)
        except bodies.BodyError as e:
            raise errors.bad_request(str(e)) from None
    if ctype == PROTOBUF:
        codec = ProtobufCodec.shared()
        if not codec.available:
            raise errors.unsupported_media_type(
                "protobuf request bodies need the Kubernetes type descriptors, read from a kubectl binary on the "
                "server's PATH (or TMC_KUBECTL_BINARY); none was found. Send application/json instead"
            )
        return codec.decode(raw)
    if ctype in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
        raise errors.unsupported_media_type(f"{ctype} is only accepted by PATCH")
    if ctype not in ("application/json", "application/octet-stream", ""):
        raise errors.unsupported_media_type(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"application/json, application/yaml; got {ctype}"
        )
    return parse_json_body(raw, "couldn't get version/kind; json parse error")


def parse_json_body(raw: bytes, what: str) -> Any:
    """A JSON request body within the depth limit; 400 with `what` in front of a syntax error."""
    try:
        return bodies.parse_json(raw)
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"{what}: {e}") from None
    except bodies.BodyError as e:
        raise errors.bad_request(str(e)) from None
