"""Every DynamoDB table and SQS queue Inkwell uses, declared once.

Test fixtures, the local stack (`infra.provision`) and the CloudFormation template
(`infra.template`) are all built from these declarations; code reaches a resource by its logical
name through `chalicelib.aws`, never by a hand-written physical name.

Conventions: every table is on-demand; a table with a TTL stores the expiry (epoch seconds) in
`ttl` and, when it needs sweeping, the expiry's UTC day in `expiry_day` so that cleanup jobs can
find what TTL has not removed yet with a Query on the `by_expiry` index instead of a Scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Index:
    name: str
    pk: str
    sk: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    pk: str
    sk: str | None = None
    # attribute name -> "S" | "N", for every key attribute of the table and its indexes
    types: dict[str, str] = field(default_factory=dict)
    indexes: tuple[Index, ...] = ()
    ttl: str | None = None
    description: str = ""

    def attr_type(self, attr: str) -> str:
        return self.types.get(attr, "S")

    def key_attributes(self) -> list[str]:
        names = [self.pk] + ([self.sk] if self.sk else [])
        for index in self.indexes:
            names += [index.pk] + ([index.sk] if index.sk else [])
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Queue:
    name: str
    attempts: int = 3  # deliveries in all before the message goes to the dead-letter queue
    function_timeout: int = 60  # seconds, the consuming Lambda's timeout
    batch_size: int = 10
    backoff_base: float = 2.0  # seconds before the 2nd attempt; doubled for each later one
    description: str = ""

    @property
    def visibility_timeout(self) -> int:
        # AWS asks for at least 6x the function timeout on an SQS event source.
        return self.function_timeout * 6

    @property
    def dlq(self) -> str:
        return f"{self.name}-dlq"


EXPIRY_INDEX = Index("by_expiry", "expiry_day", "ttl")
_TTL_TYPES = {"ttl": "N", "expiry_day": "S"}

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "users",
            pk="id",
            indexes=(Index("by_email", "email"),),
            description="accounts; an `email#<address>` guard item keeps emails unique",
        ),
        Table(
            "sessions",
            pk="jti",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX,),
            description="issued tokens by jti; deleting one revokes the token",
        ),
        Table(
            "login_attempts",
            pk="key",
            sk="at",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX,),
            description="failed logins by `email#…` and `ip#…`, sorted by time",
        ),
        Table(
            "articles",
            pk="id",
            types={"kind": "S", "created_at": "S"},
            indexes=(
                Index("by_status", "status", "updated_at"),
                Index("by_created", "kind", "created_at"),
            ),
            description="articles and their state machine",
        ),
        Table(
            "analytics_events",
            pk="day",
            sk="sk",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX, Index("by_article", "article_id", "sk")),
            description="view/click/share events by UTC day",
        ),
        Table(
            "settings",
            pk="scope",
            sk="key",
            description="admin settings (scope `config`) and stored reports (scope `report`)",
        ),
    )
}

QUEUES: dict[str, Queue] = {}


def table(name: str) -> Table:
    return TABLES[name]


def queue(name: str) -> Queue:
    return QUEUES[name]
