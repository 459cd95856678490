"""Articles and their state machine, enforced with DynamoDB conditional writes.

DRAFT -> PROCESSING (generate) -> PUBLISHED (content arrives) -> ARCHIVED, plus publish and
archive from the states listed in TRANSITIONS, and a rollback from PROCESSING to the status the
article had before. Every change is one conditional UpdateItem, so of two concurrent requests
exactly one wins and the other gets InvalidTransition (409).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from boto3.dynamodb.conditions import Key
from pydantic import ConfigDict, Field, field_validator

from chalicelib import audit, aws, errors, timeutil
from chalicelib.http import Body, query_page
from chalicelib.util import WRITE_TOKEN, applied, create_args, own_repeat, refused_item

ID_PATTERN = re.compile(r"[0-9a-f]{32}")
STATUSES = ("DRAFT", "PROCESSING", "PUBLISHED", "ARCHIVED")

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "generate": (frozenset({"DRAFT", "PUBLISHED", "ARCHIVED"}), "PROCESSING"),
    "publish": (frozenset({"DRAFT", "ARCHIVED"}), "PUBLISHED"),
    "archive": (frozenset({"DRAFT", "PUBLISHED"}), "ARCHIVED"),
}


class ArticleNotFound(Exception):
    pass


class NotTheAuthor(Exception):
    """A conditional write that only the article's author may make was made by someone else."""


class InvalidTransition(Exception):
    def __init__(self, article_id: str, action: str, status: str | None) -> None:
        super().__init__(f"cannot {action} article {article_id} while it is {status}")
        self.status = status


class NewArticle(Body):
    model_config = ConfigDict(str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    topic: str = Field(min_length=1, max_length=500)
    keywords: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        cleaned = [k.strip() for k in value]
        for k in cleaned:
            if not 1 <= len(k) <= 50:
                raise ValueError("each keyword must be 1 to 50 characters")
        return list(dict.fromkeys(cleaned))


def check_transition(action: str, status: str, has_content: bool) -> bool:
    """Pure rule: may `action` start from `status`?"""
    sources, _ = TRANSITIONS[action]
    if status not in sources:
        return False
    return not (action == "publish" and not has_content)


def public(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "title": item["title"],
        "topic": item["topic"],
        "keywords": list(item.get("keywords") or []),
        "status": item["status"],
        "author_id": item["author_id"],
        "content": item.get("content"),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


class Articles:
    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def table(self) -> Any:
        return self._table

    def create(self, data: NewArticle, author_id: str) -> dict[str, Any]:
        now = timeutil.iso_ms()
        item: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "kind": "article",
            "title": data.title,
            "topic": data.topic,
            "keywords": data.keywords,
            "status": "DRAFT",
            "author_id": author_id,
            "created_at": now,
            "updated_at": now,
            WRITE_TOKEN: uuid.uuid4().hex,
        }
        with own_repeat(item):
            self._table.put_item(**create_args(item))
        return item

    def get(self, article_id: str) -> dict[str, Any]:
        item = self._table.get_item(Key={"id": article_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise ArticleNotFound(article_id)
        return item

    def list_query(self, status: str | None) -> dict[str, Any]:
        """Query arguments for a listing, newest first, by status or over all articles."""
        if status:
            return {
                "IndexName": "by_status",
                "KeyConditionExpression": Key("status").eq(status),
                "ScanIndexForward": False,
            }
        return {
            "IndexName": "by_created",
            "KeyConditionExpression": Key("kind").eq("article"),
            "ScanIndexForward": False,
        }

    def transition(
        self, article_id: str, action: str, extra: dict[str, Any] | None = None, author_id: str | None = None
    ) -> dict[str, Any]:
        """Apply `action` atomically; returns the new item. Raises ArticleNotFound,
        InvalidTransition (also when a concurrent request won the race) or, with `author_id`,
        NotTheAuthor when the article is someone else's (checked in the same write)."""
        sources, target = TRANSITIONS[action]
        names = {"#s": "status", "#u": "updated_at", "#id": "id"}
        values: dict[str, Any] = {":to": target, ":now": timeutil.iso_ms()}
        allowed = []
        for i, status in enumerate(sorted(sources)):
            values[f":f{i}"] = status
            allowed.append(f":f{i}")
        condition = f"attribute_exists(#id) AND #s IN ({', '.join(allowed)})"
        if action == "publish":
            condition += " AND attribute_exists(content)"
        if author_id is not None:
            condition += " AND author_id = :author"
            values[":author"] = author_id
        sets = ["#s = :to", "#u = :now"]
        if action == "generate":
            sets.append("previous_status = #s")
        for i, (name, value) in enumerate((extra or {}).items()):
            names[f"#x{i}"] = name
            values[f":x{i}"] = value
            sets.append(f"#x{i} = :x{i}")
        return self._update(article_id, action, "SET " + ", ".join(sets), condition, names, values, author_id)

    def complete_generation(self, article_id: str, job_id: str, content: str) -> dict[str, Any]:
        """PROCESSING -> PUBLISHED with the content, only for the job that started it."""
        return self._update(
            article_id,
            "complete",
            "SET #s = :to, #u = :now, content = :c REMOVE previous_status",
            "attribute_exists(#id) AND #s = :processing AND job_id = :job",
            {"#s": "status", "#u": "updated_at", "#id": "id"},
            {":to": "PUBLISHED", ":now": timeutil.iso_ms(), ":c": content, ":processing": "PROCESSING", ":job": job_id},
        )

    def rollback(self, article_id: str, job_id: str) -> dict[str, Any]:
        """PROCESSING -> the status before it, only for the job that started it."""
        item = self.get(article_id)
        if item["status"] != "PROCESSING" or item.get("job_id") != job_id:
            raise InvalidTransition(article_id, "roll back", item["status"])
        return self._update(
            article_id,
            "roll back",
            "SET #s = :to, #u = :now REMOVE previous_status",
            "attribute_exists(#id) AND #s = :processing AND job_id = :job",
            {"#s": "status", "#u": "updated_at", "#id": "id"},
            {
                ":to": item.get("previous_status", "DRAFT"),
                ":now": timeutil.iso_ms(),
                ":processing": "PROCESSING",
                ":job": job_id,
            },
        )

    def _update(
        self,
        article_id: str,
        action: str,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        author_id: str | None = None,
    ) -> dict[str, Any]:
        client = self._table.meta.client
        token = uuid.uuid4().hex
        names = dict(names, **{"#wt": WRITE_TOKEN})
        values = dict(values, **{":wt": token})
        try:
            result = self._table.update_item(
                Key={"id": article_id},
                UpdateExpression=update.replace("SET ", "SET #wt = :wt, ", 1),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException as exc:
            old = refused_item(exc)
            if old is None:  # an emulator without ReturnValuesOnConditionCheckFailure: look
                old = self._table.get_item(Key={"id": article_id}, ConsistentRead=True).get("Item")
            if applied(old, token):  # this very write, applied already (its answer lost, sent again)
                assert old is not None
                return old
            if not old:
                raise ArticleNotFound(article_id) from None
            if author_id is not None and old.get("author_id") != author_id:
                raise NotTheAuthor(article_id) from None
            raise InvalidTransition(article_id, action, old.get("status")) from None
        return result["Attributes"]


def articles() -> Articles:
    return Articles(aws.table("articles"))


def create(data: NewArticle, author_id: str) -> dict[str, Any]:
    """A new DRAFT article, recorded in the audit trail."""
    item = articles().create(data, author_id)
    audit.record("article.create", resource=("article", item["id"]), details={"title": item["title"]})
    return item


def find(article_id: str) -> dict[str, Any]:
    """The article, or errors.NotFound (also for ids this API never issues)."""
    if not ID_PATTERN.fullmatch(article_id):
        raise errors.NotFound(f"article {article_id[:64]}")
    try:
        return articles().get(article_id)
    except ArticleNotFound:
        raise errors.NotFound(f"article {article_id}") from None


def list_page(params: dict[str, str]) -> dict[str, Any]:
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise errors.Invalid(f"must be one of {', '.join(STATUSES)}", "status")
    index_keys = {"status", "updated_at"} if status else {"kind", "created_at"}
    store = articles()
    return query_page(store.table, params, index_keys | {"id"}, public, **store.list_query(status))
