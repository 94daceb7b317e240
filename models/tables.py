"""The campaign's tables. Timestamps are stored in UTC and are timezone-aware in Python."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC, also on SQLite (which stores no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware one")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """A row's default timestamp: the run's business moment (models/clock.py) or the wall clock."""
    from models.clock import now  # clock imports config.schema; tables stay importable on their own

    return now()


def _ts(nullable: bool = True, **kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, **kw)


class ObligationStatus(StrEnum):
    open = "open"
    submitted = "submitted"


class OutboxStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    dead = "dead"


class MessageKind(StrEnum):
    kickoff = "kickoff"
    reminder = "reminder"
    overdue = "overdue"  # to the late unit itself
    escalation = "escalation"  # to its supervising unit
    receipt = "receipt"  # a submission accepted
    rejection = "rejection"  # a submitted file refused, with the reason
    intake_result = "intake_result"  # a workbook's rows taken in: admitted, updated, errors
    approval_due = "approval_due"  # to the province: proposals wait for an operator's decision
    recommendation = "recommendation"  # a recommendation decided, to the recommending unit
    flag = "flag"  # a service flag raised (funds diverted, subsidies out of step), to the province
    review_result = (
        "review_result"  # a unit's bases named (and recommended upward), or its scoring incomplete
    )
    exchange = "exchange"  # a unit picked to present at the exchange meeting
    scorecard = "scorecard"  # a city's year-end assessment, its scorecard attached
    dead_digest = "dead_digest"  # to the province: messages given up since the last digest


class RecommendationStatus(StrEnum):
    proposed = "proposed"
    approved = "approved"
    excluded = "excluded"


# ------------------------------------------------------------------ hierarchy
class Unit(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=16)
    name: str
    bureau: str
    level: str = Field(index=True, max_length=16)
    reports_to: str | None = Field(default=None, foreign_key="unit.key", max_length=16)


class Contact(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("unit_key", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)
    name: str
    role: str = ""
    email: str | None = None
    phone: str | None = None  # personal data: masked wherever shown or sent


class Channel(SQLModel, table=True):
    """Where a unit's messages go. `address` is an e-mail address or the NAME of a secret, never a token."""

    __table_args__ = (sa.UniqueConstraint("unit_key", "kind", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)
    kind: str = Field(max_length=16)
    address: str
    sign_secret: str | None = None  # name of the signing secret (DingTalk, Feishu)


# ------------------------------------------------------------------ obligations and submissions
class ObligationInstance(SQLModel, table=True):
    """One unit's obligation for one period, e.g. 南关区's june_survey for 2022.

    An obligation owed per recommended project has one instance per project (`subject`, e.g.
    "app:17"); one counted against a target (trainings: city >= 2) keeps its progress in
    `done_count` / `required_count`; `progress_note` says in words how far it is (shown in reminders).
    """

    __tablename__ = "obligation"
    __table_args__ = (
        sa.UniqueConstraint(
            "year", "obligation_key", "unit_key", "period", "subject", name="uq_obligation_subject"
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    obligation_key: str = Field(index=True, max_length=64)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)
    period: str = Field(max_length=16)
    kickoff_on: dt.date
    due_on: dt.date
    status: str = Field(default=ObligationStatus.open, max_length=16)
    submitted_at: dt.datetime | None = _ts()
    last_step: str | None = Field(default=None, max_length=16)  # last notification step decided
    subject: str = Field(default="", max_length=32)
    subject_label: str = ""
    required_count: int = 1
    done_count: int = 0
    progress_note: str = ""


class Submission(SQLModel, table=True):
    """Evidence received for an obligation: a file from the inbox, or an operator's record."""

    __table_args__ = (sa.UniqueConstraint("obligation_id", "dedupe_key"),)
    id: int | None = Field(default=None, primary_key=True)
    obligation_id: int = Field(foreign_key="obligation.id", index=True)
    dedupe_key: str = Field(max_length=80)  # "sha256:<hex>" of the file, or of the operator's record
    source: str = Field(max_length=16)  # inbox | operator
    submitted_by: str = ""
    received_at: dt.datetime = Field(sa_type=UTCDateTime)
    file_name: str | None = None
    archived_path: str | None = None
    note: str = ""


class IntakeRejection(SQLModel, table=True):
    """A submitted file that could not be accepted. Kept, with its reason, so nothing is lost."""

    __tablename__ = "intake_rejection"
    __table_args__ = (sa.UniqueConstraint("sha256", "file_name"),)
    id: int | None = Field(default=None, primary_key=True)
    file_name: str
    sha256: str = Field(max_length=64)
    unit_key: str | None = Field(default=None, max_length=16)
    obligation_key: str | None = Field(default=None, max_length=64)
    reason: str
    kept_at: str
    received_at: dt.datetime = Field(sa_type=UTCDateTime)
    # When its sender was told (one message per sender and run lists all of theirs; tasks/inbox.py).
    told_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class InboxFault(SQLModel, table=True):
    """A file the system could not take in (the database, the disk, a bug): not the sender's fault, so
    the file stays in its inbox for the next run and its sender hears nothing; operators see it here
    (the overview lists it). After `intake_limits.quarantine_after_faults` runs it is moved aside."""

    __tablename__ = "inbox_fault"
    __table_args__ = (sa.UniqueConstraint("folder", "file_name", "sha256"),)
    id: int | None = Field(default=None, primary_key=True)
    folder: str = Field(max_length=64)  # the inbox folder (an obligation's key, or a sheet's)
    file_name: str
    sha256: str = Field(max_length=64)
    unit_key: str | None = Field(default=None, max_length=16)
    faults: int = 0  # runs that failed on it
    reason: str  # the last one, without secrets
    first_at: dt.datetime = Field(sa_type=UTCDateTime)
    last_at: dt.datetime = Field(sa_type=UTCDateTime)
    quarantined_at: str = ""  # where it was moved, once it was


class IntakeFile(SQLModel, table=True):
    """A workbook received for a rolling obligation (e.g. pool applications), with what it yielded.

    The same file twice (same hash) is recognised here and changes nothing.
    """

    __tablename__ = "intake_file"
    __table_args__ = (sa.UniqueConstraint("obligation_key", "sha256"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int
    obligation_key: str = Field(max_length=64)
    sha256: str = Field(max_length=64)
    file_name: str
    unit_key: str = Field(foreign_key="unit.key", max_length=16)
    received_at: dt.datetime = Field(sa_type=UTCDateTime)
    archived_path: str
    error_workbook: str | None = None
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    # The first row errors (row, column, value, reason) as its sender's page lists them; the error
    # workbook has all of them.
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)


# ------------------------------------------------------------------ the bureaus' pages (portal/)
class UnitLink(SQLModel, table=True):
    """A unit's link to its page for a year (models/links.py): only the token's hash is kept. The live
    link is the newest version without `revoked_at`; reissuing adds a version."""

    __tablename__ = "unit_link"
    __table_args__ = (sa.UniqueConstraint("unit_key", "year", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)
    year: int
    version: int = 1
    token_hash: str = Field(max_length=64, unique=True)
    issued_at: dt.datetime = Field(sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: str | None = None


class Upload(SQLModel, table=True):
    """A file uploaded through a unit's page, recorded before the page says 已收到: its receipt is the
    row's number. The same file for the same inbox twice is the same upload (unique hash)."""

    __tablename__ = "upload"
    __table_args__ = (sa.UniqueConstraint("unit_key", "folder", "sha256"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int
    unit_key: str = Field(foreign_key="unit.key", max_length=16, index=True)
    obligation_key: str = Field(max_length=64)
    folder: str = Field(max_length=64)  # the inbox folder it was put in
    original_name: str  # as the sender's device named it (shown; never used as a path)
    stored_name: str  # what the server named it in the inbox
    size: int
    sha256: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # what its bytes are: xlsx, pdf, zip …
    received_at: dt.datetime = Field(sa_type=UTCDateTime)
    uploaded_by: str  # the unit itself, or the operator who uploaded it on its behalf
    address: str = Field(default="", max_length=64)  # the client's address (audit)


class IntakeRequest(SQLModel, table=True):
    """Uploads waiting for a flow's intake: the portal asks for a run (a Prefect event) only when none
    is outstanding, so a burst of uploads is one run (and one after it), and a sweep asks again for a
    request no run took within a minute (an event can be lost)."""

    __tablename__ = "intake_request"
    flow: str = Field(primary_key=True, max_length=64)
    year: int = Field(primary_key=True)
    requested_at: dt.datetime = Field(sa_type=UTCDateTime)
    asked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # the event last sent
    taken_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # a run began its intake


# ------------------------------------------------------------------ incubation pool (三(三))
class PoolApplication(SQLModel, table=True):
    """One project's application to the incubation pool; identity: credit code + project name, in every
    year (the pool is a standing registry: a project admitted in 2021 is still in the 2022 pool).

    `level`/`pool_unit` is the pool it was admitted to (or judged against, if `admitted` is false);
    recommendations upward are rows of `recommendation`. Personal data is kept masked only: no
    process of the campaign needs the full ID or phone number once the row has been checked.
    """

    __tablename__ = "pool_application"
    __table_args__ = (sa.UniqueConstraint("credit_code", "project_name", name="uq_pool_project"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)  # the campaign year it first applied in: the pool outlives the year
    project_name: str
    entity_name: str
    credit_code: str = Field(max_length=18)
    entity_type: str = Field(max_length=16)
    leader_name: str
    leader_id_masked: str = Field(max_length=18)
    leader_category: str = Field(max_length=16)
    phone_masked: str = Field(max_length=24)
    region_key: str = Field(foreign_key="unit.key", max_length=16)
    township: str = ""
    village: str = ""
    industry: str
    founded_on: dt.date
    premises_m2: float = 0
    planted_mu: float = 0
    entrepreneurs_driven: int = 0
    jobs: int = 0
    poverty_jobs: int = 0
    avg_wage_yuan: float = 0
    speciality: str = Field(default="无", max_length=8)
    directions: str = ""  # "乡村振兴、区域品牌特色"
    growth_stage: str = Field(default="无", max_length=8)  # 三(五) 三个优先: 成长期、上升期、有潜力
    demonstrative: bool = False  # 三(五) 三个优先: 示范性、代表性的农业和涉农项目
    declared_level: str = Field(max_length=8)
    # policy tilts (三(二)): stored one per column so they can be queried and counted
    beef_cattle: bool = False
    assistance_workshop: bool = False
    border_village: bool = False
    hollow_village: bool = False
    commended: bool = False
    poverty_employment: bool = False
    key_county: bool = False
    priority: float = 0
    level: str = Field(max_length=16)
    pool_unit: str = Field(foreign_key="unit.key", max_length=16, index=True)
    admitted: bool
    admission_note: str = ""
    submitted_by: str = Field(foreign_key="unit.key", max_length=16)
    source_file_id: int = Field(foreign_key="intake_file.id")
    source_row: int
    content_hash: str = Field(max_length=20)
    received_at: dt.datetime = Field(sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)


class Recommendation(SQLModel, table=True):
    """A project proposed from one pool to the one above (应推尽推), and the operator's decision."""

    __table_args__ = (sa.UniqueConstraint("application_id", "to_level"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    application_id: int = Field(foreign_key="pool_application.id", index=True)
    from_unit: str = Field(foreign_key="unit.key", max_length=16)
    to_unit: str = Field(foreign_key="unit.key", max_length=16)
    to_level: str = Field(max_length=16)
    status: str = Field(default=RecommendationStatus.proposed, max_length=16, index=True)
    proposed_at: dt.datetime = Field(sa_type=UTCDateTime)
    decided_at: dt.datetime | None = _ts()
    decided_by: str | None = None
    reason: str = ""
    flow_run_id: str | None = Field(default=None, max_length=64)


# ------------------------------------------------------------------ services (三(四), 三(五))
class _Received(SQLModel):
    """Where a record taken in from a workbook came from; `content_hash` spots an unchanged resubmission."""

    source_file_id: int | None = Field(default=None, foreign_key="intake_file.id")
    source_row: int | None = None
    content_hash: str = Field(default="", max_length=20)
    submitted_by: str = Field(foreign_key="unit.key", max_length=16)
    received_at: dt.datetime = Field(sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)


class LeaderAssignment(SQLModel, table=True):
    """包保: a project recommended upward, assigned to a main leader of the recommending level."""

    __tablename__ = "leader_assignment"
    __table_args__ = (sa.UniqueConstraint("year", "application_id", "unit_key"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    application_id: int = Field(foreign_key="pool_application.id")
    unit_key: str = Field(foreign_key="unit.key", max_length=16)  # the recommending unit
    leader_name: str
    leader_title: str = ""
    assigned_on: dt.date
    assigned_by: str  # an operator's name, or "config"
    source: str = Field(max_length=16)  # config | operator


class VisitRecord(_Received, table=True):
    """A 包保 leader's visit to a pool project: findings, needs in the five categories, services given."""

    __tablename__ = "visit_record"
    __table_args__ = (sa.UniqueConstraint("year", "unit_key", "credit_code", "project_name", "visited_on"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)  # the visiting (recommending) unit
    application_id: int = Field(foreign_key="pool_application.id", index=True)
    credit_code: str = Field(max_length=18)
    project_name: str
    visited_on: dt.date
    leader_name: str
    leader_title: str = ""
    findings: str = ""
    need_categories: str = ""  # "经营管理、销售渠道"
    needs: str = ""
    services: str = ""


class VisitNeed(SQLModel, table=True):
    """Needs collected on visits, per quarter, city and category: the summary the province plans services from."""

    __tablename__ = "visit_need"
    __table_args__ = (sa.UniqueConstraint("year", "quarter", "city_key", "category"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    quarter: str = Field(max_length=16)
    city_key: str = Field(foreign_key="unit.key", max_length=16)
    category: str = Field(max_length=16)
    visits: int
    projects: int


class TrainingRecord(_Received, table=True):
    """A training held: an entrepreneur training (每半年一期) or an agri-technician training."""

    __tablename__ = "training_record"
    __table_args__ = (sa.UniqueConstraint("year", "unit_key", "kind", "held_on", "topic"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)  # the unit that held it
    kind: str = Field(max_length=16)
    held_on: dt.date
    topic: str
    attendees: int
    linked_projects: str = ""
    note: str = ""


class AdmissionStandard(_Received, table=True):
    """三(二)、四(二) a unit's filed admission bar (入库标准表): its pool admits against it."""

    __tablename__ = "admission_standard"
    __table_args__ = (sa.UniqueConstraint("year", "unit_key"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)
    min_years_operating: float
    min_premises_m2: float  # 0: no requirement on this measure
    min_planted_mu: float
    min_entrepreneurs_driven: int
    min_jobs: int
    min_avg_wage_yuan: float


class FundRecord(_Received, table=True):
    """One line of a unit's fund ledger: a batch (文号) for one purpose, allocated, arrived, executed."""

    __tablename__ = "fund_record"
    __table_args__ = (sa.UniqueConstraint("year", "unit_key", "document_no", "purpose"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)
    source: str = Field(max_length=32)
    fund_year: int
    document_no: str
    purpose: str
    allocated: float
    allocated_on: dt.date
    arrived: float = 0
    arrived_on: dt.date | None = None
    executed: float = 0
    executed_on: dt.date | None = None
    note: str = ""
    diversion: bool = False  # provincial special funds spent outside the eligible purposes


class JobPosting(_Received, table=True):
    """Free job postings made for a pool project on the 96885吉人在线 platform (recorded, not fetched)."""

    __tablename__ = "job_posting"
    __table_args__ = (sa.UniqueConstraint("year", "credit_code", "project_name", "posted_on"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    application_id: int = Field(foreign_key="pool_application.id", index=True)
    credit_code: str = Field(max_length=18)
    project_name: str
    posted_on: dt.date
    postings: int
    positions: int = 0
    note: str = ""


class ServiceFlag(SQLModel, table=True):
    """Something the province must hear of at once: funds diverted, subsidies paid out of step.

    Unique per (year, kind, unit, subject): a flag is raised, and its message sent, once.
    """

    __tablename__ = "service_flag"
    __table_args__ = (sa.UniqueConstraint("year", "kind", "unit_key", "subject"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    kind: str = Field(max_length=32)  # diversion | subsidy_out_of_step
    unit_key: str = Field(foreign_key="unit.key", max_length=16)
    subject: str
    detail: str
    raised_at: dt.datetime = Field(sa_type=UTCDateTime)


# ------------------------------------------------------------------ notifications
# ------------------------------------------------------------------ review, publicity, assessment (三(六), 四)
class BaseStatus(StrEnum):
    ranked = "ranked"  # scored and ranked, outside the quota
    proposed = "proposed"  # within the quota, awaiting the operator
    named = "named"
    not_named = "not_named"


class ExpertScore(_Received, table=True):
    """One expert's score of one project on one criterion, in a reviewing unit's review."""

    __tablename__ = "expert_score"
    __table_args__ = (
        sa.UniqueConstraint("year", "unit_key", "credit_code", "project_name", "expert_name", "criterion"),
    )
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)  # the reviewing unit
    application_id: int = Field(foreign_key="pool_application.id", index=True)
    credit_code: str = Field(max_length=18)
    project_name: str
    expert_name: str
    expert_employer: str = ""
    criterion: str = Field(max_length=32)
    score: float
    materials_from: dt.date
    materials_to: dt.date


class BaseSource(StrEnum):
    review = "review"  # ranked from expert scores; the province's own round, decided by its operator
    naming_list = "naming_list"  # 三(六) a city or county's own naming list (评审认定 is theirs)
    imported = "imported"  # an earlier year's base, from the province's list (a first year's start)


class NamedBase(SQLModel, table=True):
    """A project's naming by one unit in one year: its place in a ranking (where experts' scores were
    filed), and the decision, by the unit's own naming list (cities and counties) or the province's
    operator (the provincial round). Bases outlive the year: a city base of 2021 may be named
    provincial in 2022."""

    __tablename__ = "base"
    __table_args__ = (sa.UniqueConstraint("year", "unit_key", "application_id"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)  # the naming unit
    level: str = Field(max_length=16)
    application_id: int = Field(foreign_key="pool_application.id", index=True)
    expert_score: float | None = None  # the experts' aggregated score (none for a naming list's base
    priority: float | None = None  # filed without scores, or an imported one)
    total: float | None = None
    rank: int | None = None
    status: str = Field(default=BaseStatus.ranked, max_length=16, index=True)
    tier: str = Field(default="", max_length=16)
    amount_yuan: float = 0
    recommended_to: str | None = Field(default=None, foreign_key="unit.key", max_length=16)
    ranked_at: dt.datetime = Field(sa_type=UTCDateTime)
    decided_by: str | None = None
    decided_at: dt.datetime | None = _ts()
    reason: str = ""
    flow_run_id: str | None = Field(default=None, max_length=64)
    decree_no: str = ""  # 命名文件文号
    source: str = Field(default=BaseSource.review, max_length=16)
    # 应推尽推: why a named base that meets the upper pool's bar was not recommended (shown upward)
    kept_reason: str = ""
    source_file_id: int | None = Field(default=None, foreign_key="intake_file.id")


class PublicityRecord(_Received, table=True):
    """四(四) a typical base picked or an experience article written, and where it was published."""

    __tablename__ = "publicity_record"
    __table_args__ = (sa.UniqueConstraint("year", "unit_key", "category", "title"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)  # the city it counts for
    category: str = Field(max_length=16)
    title: str
    application_id: int | None = Field(default=None, foreign_key="pool_application.id")
    credit_code: str = Field(default="", max_length=18)
    project_name: str = ""
    outlet: str = ""
    published_on: dt.date | None = None


class IncomeRecord(_Received, table=True):
    """A named base's employees' average yearly income, last year and this (经济效益)."""

    __tablename__ = "income_record"
    __table_args__ = (sa.UniqueConstraint("year", "credit_code", "project_name"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)  # the reporting unit
    application_id: int = Field(foreign_key="pool_application.id", index=True)
    credit_code: str = Field(max_length=18)
    project_name: str
    income_last_year: float
    income_this_year: float


class ExchangePresentation(SQLModel, table=True):
    """A unit picked by the province to present at the 三送 exchange meeting."""

    __tablename__ = "exchange_presentation"
    __table_args__ = (sa.UniqueConstraint("year", "unit_key"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    unit_key: str = Field(foreign_key="unit.key", max_length=16)
    meeting_on: dt.date
    place: str
    topic: str = ""
    picked_by: str
    picked_at: dt.datetime = Field(sa_type=UTCDateTime)


class OutboxMessage(SQLModel, table=True):
    """A decided notification. Written with the state it comes from; delivered afterwards.

    `dedupe_key` is unique: deciding the same message again (a second run on the same day, a retry)
    inserts nothing. `recipient` is an address or a secret's name; bodies are stored masked.
    """

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "channel_kind", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=255)
    unit_key: str = Field(foreign_key="unit.key", max_length=16, index=True)
    obligation_id: int | None = Field(default=None, foreign_key="obligation.id")
    kind: str = Field(max_length=16)
    step: str = Field(default="", max_length=16)
    channel_kind: str = Field(max_length=16)
    recipient: str
    subject: str
    body: str
    status: str = Field(default=OutboxStatus.pending, max_length=16, index=True)
    attempts: int = 0
    # Sends that ended without knowing whether the message arrived (the line cut after its content
    # went out): never repeated in the same run, and capped (`delivery.max_unknown_outcomes`).
    unknown_outcomes: int = 0
    last_error: str | None = None
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    next_attempt_at: dt.datetime | None = _ts()
    sent_at: dt.datetime | None = _ts()
    attachment: str | None = None  # a file sent with the message (e-mail) or named in it (IM)
    # A deliverer's claim: who is sending it and until when (an expired claim is free again).
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: dt.datetime | None = _ts()
    dead_at: dt.datetime | None = _ts()  # when it was given up
    revived_at: dt.datetime | None = _ts()  # when an operator asked for a dead message to be sent again


class EndpointPace(SQLModel, table=True):
    """When a sending endpoint (a robot, the SMTP account) is next free: shared by every deliverer, so
    pacing holds however many deliver at once. Epoch seconds, so both dialects do the arithmetic."""

    __tablename__ = "endpoint_pace"
    endpoint: str = Field(primary_key=True, max_length=255)
    free_at: float = 0.0


class RunLease(SQLModel, table=True):
    """Which run is working on a flow's year right now: one at a time, held only while the run works (a
    run paused for an operator holds none). A lease that is not renewed runs out, so a run that died
    frees its flow. Epoch seconds of the wall clock: a lease is plumbing, not a business record."""

    __tablename__ = "run_lease"
    name: str = Field(primary_key=True, max_length=128)  # "<flow>:<year>"
    holder: str = Field(max_length=64)  # the flow run's id, or a process's own for a direct call
    expires_at: float = 0.0


# ------------------------------------------------------------------ audit
class FlowRunAudit(SQLModel, table=True):
    __tablename__ = "flow_run_audit"
    id: int | None = Field(default=None, primary_key=True)
    flow_name: str = Field(max_length=64)
    flow_run_id: str | None = Field(default=None, max_length=64)
    trigger: str = Field(max_length=16)  # schedule | operator | direct
    parameters: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    started_at: dt.datetime = Field(sa_type=UTCDateTime)
    finished_at: dt.datetime | None = _ts()
    outcome: str = Field(default="running", max_length=16)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
