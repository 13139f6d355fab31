"""A Cloud Storage "object finalized" event, as the handlers see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FINALIZED = "google.cloud.storage.object.v1.finalized"


@dataclass(frozen=True)
class StorageEvent:
    id: str
    type: str
    time: datetime
    bucket: str
    name: str
    generation: int
    size: int
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_cloudevent(cls, attributes: dict[str, Any], data: dict[str, Any]) -> StorageEvent:
        """Build from a CloudEvent's attributes and its StorageObjectData payload."""
        return cls(
            id=str(attributes.get("id", "")),
            type=str(attributes.get("type", "")),
            time=_parse_time(attributes.get("time")),
            bucket=str(data.get("bucket", "")),
            name=str(data.get("name", "")),
            generation=int(data.get("generation") or 0),
            size=int(data.get("size") or 0),
            content_type=data.get("contentType"),
            metadata=dict(data.get("metadata") or {}),
        )

    def to_data(self) -> dict[str, Any]:
        """The StorageObjectData payload Cloud Storage would send for this object."""
        return {
            "bucket": self.bucket,
            "name": self.name,
            "generation": str(self.generation),
            "size": str(self.size),
            "contentType": self.content_type or "application/octet-stream",
            "metadata": self.metadata,
            "timeCreated": self.time.isoformat(),
            "updated": self.time.isoformat(),
        }


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)
