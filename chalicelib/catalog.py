"""Every DynamoDB table and SQS queue Inkwell uses, declared once.

Test fixtures, the local stack (`infra.provision`) and the CloudFormation template
(`infra.template`) are all built from these declarations; code reaches a resource by its logical
name through `chalicelib.aws`, never by a hand-written physical name.

Conventions: every table is on-demand; a table with a TTL stores the expiry (epoch seconds) in
`ttl` and, when it needs sweeping, the expiry's UTC day in `expiry_day` so that cleanup jobs can
find what TTL has not removed yet with a Query on the `by_expiry` index instead of a Scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


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
    job_types: tuple[str, ...] = ()  # what `jobs.enqueue` accepts for this queue
    keep_completed: int = 100  # retention: the newest completed / failed / cancelled job records kept
    keep_failed: int = 50
    keep_cancelled: int = 100
    # The most invocations of its consumer at once (the SQS trigger's ScalingConfig
    # MaximumConcurrency, 2-1000; an admin may change it at run time, a deploy sets it back).
    concurrency: int = 10
    # The same for its `-high` priority queue's consumer: high jobs' own share, on top of `concurrency`.
    high_concurrency: int = 2
    serves: str | None = None  # a priority queue: the job queue whose `high` jobs it carries
    # Fair between users: each message's MessageGroupId is its job's user, so SQS (a fair queue)
    # delivers a user with a large backlog no sooner than the others (docs/jobs.md, "Fairness").
    fair: bool = False
    # Job types run by this queue's own consumer only, whatever their priority (sent to this
    # queue even when `high`): the audit seal's, whose rights (kms:Sign, writing audit_digests)
    # only that one function holds.
    normal_only: tuple[str, ...] = ()
    # The code reads its dead-letter queue (the worker, the dashboard, health); False: only its
    # alarm watches it, and the role gets no access to it.
    dead_letters_read: bool = True

    @property
    def visibility_timeout(self) -> int:
        # AWS asks for at least 6x the function timeout on an SQS event source.
        return self.function_timeout * 6

    @property
    def fifo(self) -> bool:
        """A FIFO queue (SQS requires the `.fifo` suffix, its dead-letter queue's too)."""
        return self.name.endswith(".fifo")

    @property
    def dlq(self) -> str:
        return f"{self.name.removesuffix('.fifo')}-dlq" + (".fifo" if self.fifo else "")


EXPIRY_INDEX = Index("by_expiry", "expiry_day", "ttl")
_TTL_TYPES = {"ttl": "N", "expiry_day": "S"}

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "users",
            pk="id",
            indexes=(Index("by_email", "email"), Index("by_role", "role", "created_at")),
            description="accounts; an `email#<address>` guard item keeps emails unique",
        ),
        Table(
            "sessions",
            pk="jti",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX, Index("by_user", "user_id")),
            description="sessions (one per login: a refresh family) by id, the tokens' `sid`; deleting one revokes its tokens",
        ),
        Table(
            "refresh_tokens",
            pk="hash",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX,),
            description="refresh tokens by SHA-256, each with its session (`sid`); `used_at` once rotated",
        ),
        Table(
            "login_attempts",
            pk="key",
            sk="at",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX,),
            description="login attempt budgets (`slot#n` of `email#…`, `ip#…`, `device#…`) and flood counts (`flood#<minute>`)",
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
            "schedules",
            pk="name",
            description="per schedule: its last run and outcome, and the lease that keeps runs from overlapping",
        ),
        Table(
            "settings",
            pk="scope",
            sk="key",
            description="admin settings (scope `config`) and stored reports (scope `report`)",
        ),
        Table(
            "jobs",
            pk="id",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(
                EXPIRY_INDEX,
                Index("by_queue_state", "queue_state", "updated_at"),
                # job search (chalicelib/jobs/indexes.py): one filter each, newest created first
                Index("by_queue", "queue", "created_at"),
                Index("by_state", "state", "created_at"),
                Index("by_type", "type", "created_at"),
                Index("by_user", "s_user", "created_at"),
                Index("by_article", "s_article", "created_at"),
                Index("by_day", "s_day", "created_at"),
                Index("by_word", "s_word", "created_at"),
            ),
            description="job records (`queue_state` = `<queue>#<state>`), `idem#<queue>#<key>` idempotency items, `rate#<queue>#<window>` rate-limit counters, `word#<word>#<job>` error-word items (search)",
        ),
        Table(
            "webhook_logs",
            pk="article_id",
            sk="sk",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX,),
            description="every article-generation webhook call, by article and time",
        ),
        Table(
            "audit_events",
            pk="hour",
            sk="sk",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(
                EXPIRY_INDEX,
                Index("by_user", "user_id", "sk"),
                Index("by_action", "action_month", "sk"),
                Index("by_category", "category_month", "sk"),
                Index("by_resource", "resource_key", "sk"),
            ),
            description="audit trail by `<hour>#<shard>`, sorted by `<ts>#<id>`; a TTL per category",
        ),
        Table(
            "audit_digests",
            pk="hour",
            sk="seg",
            ttl="ttl",
            types={"ttl": "N"},
            description="signed, chained digests of the audit trail's sealed periods, and the chain head",
        ),
        Table(
            "job_metrics",
            pk="queue_day",
            sk="minute",
            ttl="ttl",
            types={"minute": "N", "ttl": "N"},
            description="per queue and minute (`<queue>#<day>`, epoch second): completed, failed, a duration histogram",
        ),
        Table(
            "ws_tickets",
            pk="hash",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX,),
            description="single-use WebSocket tickets by SHA-256 of the ticket; redeemed by a conditional delete",
        ),
        Table(
            "ws_connections",
            pk="connection_id",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX, Index("by_user", "user_id")),
            description="open WebSocket connections: user, session (`jti`), role, rooms, connected_at; TTL = API Gateway's 2 h cap",
        ),
        Table(
            "ws_members",
            pk="room",
            sk="connection_id",
            ttl="ttl",
            types=_TTL_TYPES,
            indexes=(EXPIRY_INDEX,),
            description="one item per room membership, so 'who is in room X' is one Query",
        ),
        Table(
            "ws_events",
            pk="room",
            sk="seq",
            ttl="ttl",
            types={"seq": "N", **_TTL_TYPES},
            indexes=(EXPIRY_INDEX,),
            description="every room's events by seq, kept >= 24 h for resume; seq 0 is the room's counter",
        ),
    )
}

_QUEUES = (
    # articles: a webhook call is bounded by 30 s (config), so a batch of 3 fits in 120 s.
    Queue(
        "articles",
        function_timeout=120,
        batch_size=3,
        concurrency=5,  # the article generator is rate-limited: few calls at once
        fair=True,  # one user's thousand generations do not hold back everyone else's
        description="article generation, publish, archive",
        job_types=("generate", "publish", "archive"),
    ),
    Queue(
        "analytics",
        function_timeout=300,
        batch_size=1,
        concurrency=2,
        description="reports and analytics cleanup",
        job_types=("daily_report", "weekly_report", "cleanup_old_data"),
    ),
    Queue(
        "emails",
        function_timeout=60,
        batch_size=10,
        high_concurrency=5,
        description="SES emails from templates",
        job_types=("send",),
    ),
    Queue(
        "cleanup",
        function_timeout=300,
        batch_size=1,
        concurrency=2,
        description="sweeps of expired data, audit digests",
        job_types=(
            "sessions",
            "login_attempts",
            "activity_logs",
            "webhook_logs",
            "orphans",
            "audit_digest",
            "audit_tally",
            "audit_export",
        ),
        normal_only=("audit_digest", "audit_tally", "audit_export", "activity_logs"),
    ),
    Queue(
        "audit",
        attempts=10,
        function_timeout=60,
        batch_size=10,
        concurrency=5,
        description="audit events DynamoDB refused, written later by their processor",
    ),
    # The WebSocket fan-out of rooms larger than one invocation (chalicelib.realtime.fanout): FIFO,
    # a message group per room and group of connections, one shard per invocation.
    Queue(
        "fanout.fifo",
        function_timeout=60,
        batch_size=1,
        concurrency=10,
        description="shards of a large room's WebSocket posts, in order per room and group of connections",
        dead_letters_read=False,
    ),
)

# Priorities: `normal` jobs go to the job queue itself, `high` ones to a second queue generated
# from it (`<queue>-high`: the same settings, its own dead-letter queue, trigger and Lambda running
# the same worker, and its own maximum concurrency, `high_concurrency`), so high jobs never wait
# behind a backlog of normal ones, nor for a free slot among the normal jobs' invocations.
PRIORITIES = ("high", "normal")
HIGH_SUFFIX = "-high"


def _high(q: Queue) -> Queue:
    return replace(
        q,
        name=q.name + HIGH_SUFFIX,
        serves=q.name,
        job_types=(),
        normal_only=(),
        concurrency=q.high_concurrency,
        description=f"high-priority {q.name} jobs",
    )


QUEUES: dict[str, Queue] = {q.name: q for q in (*_QUEUES, *(_high(q) for q in _QUEUES if q.job_types))}


@dataclass(frozen=True)
class Schedule:
    """An EventBridge Scheduler schedule that enqueues one job (see chalicelib.schedules); the
    expression, zone and state here are the defaults an admin may change at run time."""

    name: str
    expression: str  # cron(...) or rate(...), read in `timezone`
    description: str
    queue: str
    job_type: str
    timezone: str = "UTC"  # IANA
    enabled: bool = True


SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule(
            "daily-analytics",
            "cron(0 2 * * ? *)",
            "Aggregate yesterday's analytics (02:00 UTC)",
            "analytics",
            "daily_report",
        ),
        Schedule(
            "weekly-report",
            "cron(0 3 ? * MON *)",
            "Weekly analytics summary, emailed to admins (Mondays 03:00 UTC)",
            "analytics",
            "weekly_report",
        ),
        Schedule("session-cleanup", "cron(0 * * * ? *)", "Remove expired sessions (hourly)", "cleanup", "sessions"),
        Schedule(
            "login-attempts-cleanup",
            "cron(0 1 * * ? *)",
            "Remove old login attempts (daily 01:00 UTC)",
            "cleanup",
            "login_attempts",
        ),
        Schedule(
            "activity-log-cleanup",
            "cron(0 4 ? * SUN *)",
            "Remove audit events past retention (Sundays 04:00 UTC)",
            "cleanup",
            "activity_logs",
        ),
        Schedule(
            "orphan-cleanup",
            "cron(0 7 ? * SUN *)",
            "Remove data of deleted articles, expired connections and job records (Sundays 07:00 UTC)",
            "cleanup",
            "orphans",
        ),
        Schedule(
            "webhook-log-cleanup",
            "cron(0 5 1/3 * ? *)",
            "Remove old webhook logs (every third day, 05:00 UTC)",
            "cleanup",
            "webhook_logs",
        ),
        Schedule(
            "analytics-data-cleanup",
            "cron(0 6 1 * ? *)",
            "Remove old analytics events (1st of the month, 06:00 UTC)",
            "analytics",
            "cleanup_old_data",
        ),
        Schedule(
            "audit-digest",
            "cron(5 * * * ? *)",
            "Seal the closed hours of the audit trail (hourly at :05)",
            "cleanup",
            "audit_digest",
        ),
        Schedule(
            "audit-tally",
            "rate(5 minutes)",
            "Count the audit trail's finished minutes, for the report and summaries (every 5 minutes)",
            "cleanup",
            "audit_tally",
        ),
    )
}


def table(name: str) -> Table:
    return TABLES[name]


def queue(name: str) -> Queue:
    return QUEUES[name]


def priority_queue(name: str, priority: str, job_type: str = "") -> str:
    """The SQS queue carrying a job queue's jobs of that priority (of `job_type`: the queue
    itself for its `normal_only` types)."""
    if job_type and job_type in QUEUES[name].normal_only:
        return name
    return name + HIGH_SUFFIX if priority == "high" else name


def priority_queues(name: str) -> tuple[str, ...]:
    """A job queue's SQS queues: its own, and its high-priority queue when it has one."""
    high = name + HIGH_SUFFIX
    return (name, high) if high in QUEUES else (name,)


def job_queue_of(name: str) -> str:
    """The job queue a queue's messages belong to (itself, or the one a priority queue serves)."""
    return QUEUES[name].serves or name


def job_queues() -> list[str]:
    """The queues jobs run on: every queue but `audit`, which carries audit events DynamoDB
    refused (chalicelib.audit), not jobs."""
    return [name for name, spec in QUEUES.items() if spec.job_types]
