"""Pub/Sub push deliveries: the JSON body a push subscription POSTs, as typed messages.

    {"message": {"data": "<base64>", "attributes": {...}, "messageId": "...", "publishTime": "..."},
     "subscription": "projects/P/subscriptions/S"}

Two subscriptions push to the worker: Cloud Storage notifications of the input bucket
(``/storage``; attributes ``eventType``, ``bucketId``, ``objectId``, ``objectGeneration``,
data the object's JSON resource) and part tasks (``/tasks``; data a ``Task``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from voicecloning.events import FINALIZED, StorageEvent, _parse_time
from voicecloning.stores.queue import Task

# Cloud Storage notification event types -> the CloudEvent types the handlers know.
EVENT_TYPES = {"OBJECT_FINALIZE": FINALIZED}


class MalformedPush(ValueError):
    """The body is not a Pub/Sub push delivery we can read (answered 400: it dead-letters)."""


@dataclass(frozen=True)
class PushMessage:
    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: str | None
    subscription: str | None


def parse_push(body: Any) -> PushMessage:
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise MalformedPush("not a Pub/Sub push body: no 'message' object")
    message = body["message"]
    try:
        data = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, TypeError) as exc:
        raise MalformedPush(f"message data is not base64: {exc}") from None
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise MalformedPush("message attributes are not an object")
    return PushMessage(data, {str(k): str(v) for k, v in attributes.items()},
                       str(message.get("messageId") or message.get("message_id") or ""),
                       message.get("publishTime") or message.get("publish_time"), body.get("subscription"))


def storage_event(message: PushMessage) -> StorageEvent:
    """The storage event of a Cloud Storage notification (payload format JSON_API_V1)."""
    attrs = message.attributes
    try:
        resource = json.loads(message.data) if message.data else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedPush("notification data is not the object's JSON") from None
    if not isinstance(resource, dict):
        raise MalformedPush("notification data is not a JSON object")
    kind = attrs.get("eventType", "")
    return StorageEvent(
        id=message.message_id,
        type=EVENT_TYPES.get(kind, kind),
        time=_parse_time(attrs.get("eventTime") or message.publish_time),
        bucket=str(resource.get("bucket") or attrs.get("bucketId", "")),
        name=str(resource.get("name") or attrs.get("objectId", "")),
        generation=int(resource.get("generation") or attrs.get("objectGeneration") or 0),
        size=int(resource.get("size") or 0),
        content_type=resource.get("contentType"),
        metadata=dict(resource.get("metadata") or {}),
    )


def task(message: PushMessage) -> Task:
    try:
        return Task.from_bytes(message.data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPush(f"not a task: {exc}") from None


def push_body(data: bytes, attributes: dict[str, str], message_id: str, subscription: str = "local") -> dict[str, Any]:
    """The body a push subscription would POST for one message (tests and local bridges)."""
    return {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": message_id},
            "subscription": subscription}
