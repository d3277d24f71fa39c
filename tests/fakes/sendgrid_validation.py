"""What SendGrid's ``POST /v3/mail/send`` accepts, for the fake in sendgrid_server.py.

Every body is checked against SendGrid's own published schema
(``tests/data/sendgrid/sendgrid-mail-v3.json``, ``components.requestBodies.PostMailSend``)
and against the limits its documentation states only in prose; the errors come
back in SendGrid's own shape.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_ENV: Final = "SENDGRID_SPEC_PATH"
#: A copy kept in the repository (with SendGrid's MIT license beside it), so a
#: clone with nothing beside it passes ``make test``.
DEFAULT_SPEC: Final = (
    Path(__file__).resolve().parents[1] / "data" / "sendgrid" / "sendgrid-mail-v3.json"
)
SPEC_URI: Final = "urn:sendgrid:mail-v3"
REQUEST_SCHEMA_POINTER: Final = (
    "#/components/requestBodies/PostMailSend/content/application~1json/schema"
)

# Limits SendGrid documents in prose, not in the schema.
MAX_BODY_BYTES: Final = 30 * 1024 * 1024
MAX_PERSONALIZATIONS: Final = 1000
MAX_RECIPIENTS: Final = 1000
MAX_CUSTOM_ARGS_BYTES: Final = 10_000
MAX_SUBSTITUTIONS_BYTES: Final = 10_000
RESERVED_HEADERS: Final = frozenset(
    name.lower()
    for name in (
        "x-sg-id", "x-sg-eid", "received", "dkim-signature", "Content-Type",
        "Content-Transfer-Encoding", "To", "From", "Subject", "Reply-To", "CC", "BCC",
    )
)  # fmt: skip
_CONTENT_RANK: Final = {"text/plain": 0, "text/html": 1}

ApiError = dict[str, str | None]


class SpecNotFoundError(AssertionError):
    """The SendGrid schema is missing: tests that need it fail (never skip) with this."""


# -- validation ------------------------------------------------------------------------


def spec_path() -> Path:
    """Where the schema is: ``$SENDGRID_SPEC_PATH``, else the repository's copy."""
    configured = os.environ.get(SPEC_ENV)
    path = Path(configured) if configured else DEFAULT_SPEC
    if not path.is_file():
        raise SpecNotFoundError(
            f"SendGrid's schema is not at {path}: restore tests/data/sendgrid/ "
            f"or set {SPEC_ENV} to its path"
        )
    return path


@functools.cache
def schema_validator() -> Draft202012Validator:
    """The request schema, loaded once (SpecNotFoundError when it is missing)."""
    spec = json.loads(spec_path().read_text(encoding="utf-8"))
    spec = copy.deepcopy(spec)
    request = spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]
    # The published spec types message-level custom_args as a string; the live
    # API (and the SDK's Mail helper) send an object of strings (specs/README.md).
    request["schema"]["properties"]["custom_args"] = {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    # The whole document is one resource, so the schema's "#/components/..."
    # references resolve against the components beside it.
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return Draft202012Validator(
        {"$ref": SPEC_URI + REQUEST_SCHEMA_POINTER},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def api_error(message: str, field: str | None) -> ApiError:
    """One error in the shape SendGrid answers with."""
    return {"message": message, "field": field, "help": None}


def _json_size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def _check_headers(headers: object, where: str) -> Iterator[ApiError]:
    if not isinstance(headers, dict):
        return
    for name, value in headers.items():
        if name.lower() in RESERVED_HEADERS:
            yield api_error(f"The header {name} is reserved and cannot be set.", f"{where}.{name}")
        if not isinstance(value, str):
            yield api_error("Header values must be strings.", f"{where}.{name}")


def _check_custom_args(args: object, where: str) -> Iterator[ApiError]:
    if not isinstance(args, dict):
        return
    for name, value in args.items():
        if not isinstance(value, str):
            yield api_error("Custom arg values must be strings.", f"{where}.{name}")
    if _json_size(args) > MAX_CUSTOM_ARGS_BYTES:
        yield api_error("Custom args may not exceed 10,000 bytes.", where)


def _check_personalization(
    index: int, item: dict[str, Any], seen: dict[str, str], needs_subject: bool
) -> Iterator[ApiError]:
    where = f"personalizations.{index}"
    if isinstance(item.get("to"), list) and not item["to"]:
        yield api_error(
            "The to array is required for all personalization objects, and must have "
            "at least one email object with a valid email address.",
            f"{where}.to",
        )
    for kind in ("to", "cc", "bcc"):
        addresses = item.get(kind)
        for position, address in enumerate(addresses if isinstance(addresses, list) else []):
            email = address.get("email") if isinstance(address, dict) else None
            if not isinstance(email, str):
                continue
            key = email.strip().lower()
            if key in seen:
                yield api_error(
                    "Each email address should be unique within one request. We found "
                    f"a duplicate of {email} (first at {seen[key]}).",
                    f"{where}.{kind}.{position}.email",
                )
            else:
                seen[key] = f"{where}.{kind}.{position}"
    yield from _check_headers(item.get("headers"), f"{where}.headers")
    yield from _check_custom_args(item.get("custom_args"), f"{where}.custom_args")
    substitutions = item.get("substitutions")
    if isinstance(substitutions, dict) and _json_size(substitutions) > MAX_SUBSTITUTIONS_BYTES:
        yield api_error("Substitutions may not exceed 10,000 bytes per personalization.", where)
    if needs_subject and not item.get("subject"):
        yield api_error(
            "The subject is required. You can get around this requirement if you use a "
            "template with a subject defined or if every personalization has a subject defined.",
            "subject",
        )


def _prose_errors(body: dict[str, Any]) -> Iterator[ApiError]:
    templated = bool(body.get("template_id"))
    personalizations = body.get("personalizations")
    if isinstance(personalizations, list):
        if not personalizations:
            yield api_error(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        if len(personalizations) > MAX_PERSONALIZATIONS:
            yield api_error(
                f"The personalizations field cannot have more than {MAX_PERSONALIZATIONS} "
                "personalizations.",
                "personalizations",
            )
        seen: dict[str, str] = {}
        needs_subject = not templated and not body.get("subject")
        for index, item in enumerate(personalizations):
            if isinstance(item, dict):
                yield from _check_personalization(index, item, seen, needs_subject)
        if len(seen) > MAX_RECIPIENTS:
            yield api_error(
                f"A request may have at most {MAX_RECIPIENTS} recipients in total "
                "(to, cc and bcc of every personalization).",
                "personalizations",
            )
    content = body.get("content")
    if isinstance(content, list):
        types = [c.get("type") for c in content if isinstance(c, dict)]
        ranks = [_CONTENT_RANK.get(t, 2) if isinstance(t, str) else 2 for t in types]
        if ranks != sorted(ranks):
            yield api_error(
                "If present, text/plain and text/html may only be provided in this order: "
                "text/plain, text/html, then any other content.",
                "content",
            )
        if not content and not templated:
            yield api_error(
                "Unless a valid template_id is provided, content is required.", "content"
            )
    elif not templated:
        yield api_error("Unless a valid template_id is provided, content is required.", "content")
    if "reply_to" in body and "reply_to_list" in body:
        yield api_error("You can use either reply_to or reply_to_list, not both.", "reply_to")
    yield from _check_headers(body.get("headers"), "headers")
    yield from _check_custom_args(body.get("custom_args"), "custom_args")


def validate_mail_send(body: object) -> list[ApiError]:
    """SendGrid-style errors for a parsed request body; empty when SendGrid would take it."""
    errors = []
    for problem in schema_validator().iter_errors(body):
        path = ".".join(str(part) for part in problem.absolute_path) or None
        message = problem.message
        if len(message) > 300:  # a schema message may quote a 1000-item array
            message = message[:300] + "..."
        errors.append(api_error(message, path))
        if len(errors) >= 20:
            break
    if isinstance(body, dict):
        errors.extend(_prose_errors(body))
    return errors


def validate_request_bytes(raw: bytes) -> tuple[int, list[ApiError]]:
    """HTTP status and errors for a raw body: 413 when too large, 400 when invalid, else 202."""
    if len(raw) > MAX_BODY_BYTES:
        return 413, [api_error("content too large: a request may be at most 30 MB", None)]
    try:
        body = json.loads(raw)
    except ValueError:
        return 400, [api_error("Bad Request: the body is not valid JSON", None)]
    errors = validate_mail_send(body)
    return (400, errors) if errors else (202, [])
