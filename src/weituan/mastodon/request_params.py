"""Reading Mastodon request parameters the way Mastodon does: query string, form, multipart or JSON.

Mastodon clients send the same parameters in different encodings (Mastodon.py posts forms and PATCHes
multipart; web clients send JSON), and Django parses a body only for POST. `mastodon_params` accepts all.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, QueryDict

from weituan.core.errors import ValidationFailed
from weituan.core.request_text import form_fields

# Ids in a query string: `id[]=1&id[]=2`.
ID_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string", "pattern": "^[0-9]+$"}}
TEXT_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
# A Mastodon id as a parameter: a string of digits (as clients send it), or a JSON number.
ID_TEXT: dict[str, Any] = {
    "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 0}]
}
# A text parameter; a JSON number is read as its digits.
TEXT: dict[str, Any] = {"type": ["string", "number"]}


def _nullable(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    documented = {}
    for name, schema in properties.items():
        if "properties" in schema:
            schema = {**schema, "properties": _nullable(schema["properties"])}
        documented[name] = schema if name in required else {"anyOf": [schema, {"type": "null"}]}
    return documented


def query_documented(schemas: dict[str, Any], *more: dict[str, Any]) -> dict[str, Any]:
    """A route's `openapi_extra` stating the query parameters it reads itself (a list as `name[]`),
    with the parameters of `more` (such as the paging ones)."""
    parameters = [
        {"in": "query", "name": name, "required": False, "schema": schema} for name, schema in schemas.items()
    ]
    return {"parameters": [*(p for extra in more for p in extra["parameters"]), *parameters]}


def params_documented(properties: dict[str, Any], *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A route's `openapi_extra` stating the parameters it reads with `mastodon_params`, as the JSON
    object a client may send (a form with the same names, nested ones bracketed as `source[privacy]`,
    or the query string, is read the same way). A null is read as the parameter left out, which a
    required one cannot be."""
    schema: dict[str, Any] = {"type": "object", "properties": _nullable(properties, required)}
    if required:
        schema["required"] = list(required)
    return {"requestBody": {"required": bool(required), "content": {"application/json": {"schema": schema}}}}


_TRUE = frozenset({"1", "true", "on", "yes", "t"})
_FALSE = frozenset({"0", "false", "off", "no", "f", ""})
# A boolean parameter as `flag` reads it: JSON's, 1 or 0 (as Mastodon.py sends), or one of the words.
BOOLEAN: dict[str, Any] = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "integer", "enum": [0, 1]},
        {"type": "string", "enum": sorted(_TRUE | _FALSE)},
    ]
}


@dataclass
class MastodonParams:
    values: dict[str, Any] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        # JSON's object, array or true/false, or a form's `name[]` list: no text to read from it (a
        # number reads as its digits).
        if isinstance(value, dict | list | bool):
            raise ValidationFailed(f"{name} must be text", field=name)
        return str(value)

    def texts(self, name: str) -> list[str]:
        """A list parameter (`name[]=a&name[]=b`, or given once as `name=a`), blank values left out."""
        value = self.values.get(name)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        return [str(item) for item in values if str(item).strip()]

    def group(self, name: str) -> None:
        """Refuse a parameter that holds others (`source` of `source[privacy]`) given as anything but
        an object: its parameters would be read as left out, and the caller told it worked."""
        value = self.values.get(name)
        if value is not None and not isinstance(value, dict):
            raise ValidationFailed(f"{name} must be an object of parameters", field=name)

    def flag(self, name: str) -> bool | None:
        """A boolean parameter: true/false, 1/0 (Mastodon.py), on/off; None when absent."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValidationFailed(f"{name} must be true or false", field=name)

    def file(self, name: str) -> UploadedFile | None:
        """An uploaded file, None when absent. The same name sent as a plain value (a form or JSON field,
        a path or a URL, not a multipart file part) is refused rather than read as absent: the caller
        would otherwise be told it worked while nothing changed."""
        upload = self.files.get(name)
        if upload is None and self.values.get(name) is not None:
            raise ValidationFailed(
                f"{name} must be sent as a file, in a multipart/form-data request",
                code="file_expected",
                field=name,
            )
        return upload

    def pairs(self, name: str, first: str, second: str) -> list[tuple[str, str]] | None:
        """A list of objects given as Rails' nested attributes (Mastodon's `fields_attributes`), as
        (first, second) text pairs in order; None when the parameter is absent (nothing to change).

        Forms give `name[0][first]=..&name[0][second]=..` (ordered by index) or `name[][first]=..`
        repeated; JSON gives an array of objects or an object of them keyed by index. A part that is
        missing or null is blank.
        """
        items = self.objects(name)
        if items is None:
            return None
        return [(_part_text(name, item.get(first)), _part_text(name, item.get(second))) for item in items]

    def objects(self, name: str) -> list[dict[str, Any]] | None:
        """A list of objects given as Rails' nested attributes, in order (see `pairs`); None when the
        parameter is absent."""
        raw = self.values.get(name)
        items: list[Any]
        if isinstance(raw, list):
            items = raw
        elif isinstance(raw, dict):
            items = [item for _, item in sorted(raw.items(), key=lambda entry: _index_key(entry[0]))]
        elif raw is not None:
            raise ValidationFailed(f"{name} must be a list of objects", field=name)
        else:
            found = _bracketed_items(self.values, name)
            if found is None:
                return None
            items = found
        if not all(isinstance(item, dict) for item in items):
            raise ValidationFailed(f"{name} must be a list of objects", field=name)
        return items


def focus_param(value: Any) -> tuple[float, float] | None:
    """A focal point as Mastodon takes it, "x,y" (numbers, each from -1 to 1, checked where it is
    stored); None when absent or blank. Anything else is refused (422 `invalid_focus`)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parts = value.split(",") if isinstance(value, str) else []
    try:
        x, y = (float(part) for part in parts)
    except ValueError:
        raise ValidationFailed("focus must be two numbers, as x,y", code="invalid_focus") from None
    return (x, y)


def _index_key(key: Any) -> int:
    """Where an object keyed by `key` goes: by its number; any other key after every number, in the
    order given (the sort is stable)."""
    text = str(key)
    return int(text) if text.isdecimal() else 1 << 62


def _part_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ValidationFailed(f"{name} must hold text", field=name)
    return str(value)


def _bracketed_items(values: dict[str, Any], name: str) -> list[dict[str, Any]] | None:
    """The objects of a form's `name[<index>][<key>]` (or `name[][<key>]`) parameters, None if none."""
    pattern = re.compile(re.escape(name) + r"\[(\d*)\]\[(\w+)\]")
    indexed: dict[int, dict[str, Any]] = {}
    listed: dict[str, list[Any]] = {}
    for key, value in values.items():
        match = pattern.fullmatch(key)
        if match is None:
            continue
        index, part = match.groups()
        if index:
            indexed.setdefault(int(index), {})[part] = value
        else:
            listed[part] = value if isinstance(value, list) else [value]
    if not indexed and not listed:
        return None
    items = [indexed[index] for index in sorted(indexed)]
    width = max((len(parts) for parts in listed.values()), default=0)
    items += [{part: parts[i] for part, parts in listed.items() if i < len(parts)} for i in range(width)]
    return items


def _flatten(query: QueryDict) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key in query:
        items = query.getlist(key)
        if key.endswith("[]"):
            flat[key[:-2]] = items
        elif "[]" in key:  # one part of each object of a list (`fields_attributes[][name]`)
            flat[key] = items
        else:
            flat[key] = items[-1] if items else ""
    return flat


def _json_flattened(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A JSON body's objects as the bracketed names a form gives the same values ({"source":
    {"language": "zh"}} is `source[language]`), so each parameter is read one way whatever the encoding.
    The objects stay under their own names too (`source`)."""
    flat: dict[str, Any] = {}
    pending = [(prefix, data)]  # a loop, not recursion: a body may nest as deep as the JSON parser lets it
    while pending:
        outer, values = pending.pop()
        for key, value in values.items():
            name = f"{outer}[{key}]" if outer else str(key)
            flat[name] = value
            if isinstance(value, dict):
                pending.append((name, value))
    return flat


def mastodon_params(request: HttpRequest) -> MastodonParams:
    """Every parameter of the request, body values overriding the query string."""
    params = MastodonParams(values=_flatten(request.GET))
    if request.method in ("GET", "HEAD", "DELETE") and not request.headers.get("Content-Length"):
        return params
    content_type = request.content_type or ""
    if content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, RecursionError) as exc:  # nested deeper than the parser goes: not JSON to us
            raise ValidationFailed("The request body is not valid JSON", code="invalid_json") from exc
        if not isinstance(data, dict):
            raise ValidationFailed("The request body must be a JSON object", code="invalid_json")
        params.values.update(_json_flattened(data))
        return params
    params.values.update(_flatten(form_fields(request)))
    for key in request.FILES:
        upload = request.FILES.get(key)
        if isinstance(upload, UploadedFile):
            params.files[key] = upload
    return params


def list_values(request: HttpRequest, name: str) -> list[str]:
    """A list parameter: `name[]=` (or repeated `name=`) in the query string, else the list the body
    gives, as a JSON array or form fields. Some clients send a GET's parameters as a JSON body (Mastodon.py
    does for familiar followers), and Mastodon reads them there."""
    found = request.GET.getlist(f"{name}[]") + request.GET.getlist(name)
    return found or mastodon_params(request).texts(name)
