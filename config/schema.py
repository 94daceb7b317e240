"""The shape of the campaign's data files, checked when they are loaded.

Nothing here decides anything: it only says what a valid file looks like. Rules that use these values
live in `models/`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Level(StrEnum):
    province = "province"
    city = "city"
    county = "county"


LEVEL_LABELS = {Level.province: "省级", Level.city: "市级", Level.county: "县级"}


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- regions
class Contact(Frozen):
    name: str
    role: str = ""
    email: str | None = None
    phone: str | None = None


class EmailChannel(Frozen):
    kind: Literal["email"]
    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RobotChannel(Frozen):
    """A DingTalk, WeCom or Feishu group robot. `token` and `sign` name secrets, never hold them."""

    kind: Literal["dingtalk", "wecom", "feishu"]
    token: str = Field(pattern=r"^[A-Z0-9_]+$", description="secret name: env CAMPAIGN_SECRET_<token>")
    sign: str | None = Field(default=None, pattern=r"^[A-Z0-9_]+$")


class AppriseChannel(Frozen):
    kind: Literal["apprise"]
    url: str = Field(pattern=r"^[A-Z0-9_]+$", description="secret name holding any apprise URL")


class MailboxChannel(Frozen):
    kind: Literal["mailbox"]


Channel = Annotated[
    EmailChannel | RobotChannel | AppriseChannel | MailboxChannel, Field(discriminator="kind")
]


class Unit(Frozen):
    key: str = Field(pattern=r"^(\d{6}|[A-Z]{2}-[A-Z0-9]+)$")
    name: str
    bureau: str
    level: Level
    reports_to: str | None = None
    gb_parent: str | None = None
    former_codes: tuple[str, ...] = ()
    contacts: tuple[Contact, ...] = ()
    channels: tuple[Channel, ...] = ()


class Regions(Frozen):
    units: tuple[Unit, ...]


# ---------------------------------------------------------------- campaign
class ReminderPolicy(Frozen):
    before_due_working_days: tuple[Annotated[int, Field(ge=1, le=60)], ...] = (10, 5, 1)
    on_due_day: bool = True


class EscalationPolicy(Frozen):
    first_after_working_days: int = Field(default=1, ge=1, le=30)
    repeat_every_working_days: int = Field(default=5, ge=1, le=60)
    max_steps: int = Field(default=3, ge=0, le=20)


class ChannelPolicy(Frozen):
    """How one channel kind is driven in a delivery run."""

    timeout_seconds: float = Field(default=10.0, gt=0, le=120)  # one connection or request
    budget_seconds: float = Field(default=300.0, gt=0, le=3600)  # the kind's share of one run
    breaker_failures: int = Field(default=3, ge=1, le=100)  # failures in a row: endpoint skipped this run


class DeliveryPolicy(Frozen):
    """Retries within a run, back-off between runs, when a message is given up, and per-channel limits.

    `attempts` count delivery runs that tried a message, not the immediate retries inside one run.
    """

    max_attempts: int = Field(default=5, ge=1, le=50)
    retry_delays_seconds: tuple[Annotated[float, Field(ge=0)], ...] = (2.0, 10.0)
    # After a run's tries failed: how long later runs leave the message alone (then the last value
    # repeats), so a mail server that is down for a day does not use up every attempt in an hour.
    backoff_minutes: tuple[Annotated[float, Field(ge=0)], ...] = (10.0, 30.0, 120.0)
    # A message is given up only when it is past max_attempts AND this old: an outage shorter than
    # this loses nothing.
    dead_after_working_days: int = Field(default=3, ge=0, le=30)
    # A deliverer claims a message for at least this long; a dead deliverer's claim expires after it.
    lease_seconds: float = Field(default=300.0, ge=1, le=3600)
    # A send that ended without knowing whether the message arrived (the line cut after its content
    # went out) is never repeated in the same run; after this many such sends the message is given up,
    # so it reaches its recipient at most this many times.
    max_unknown_outcomes: int = Field(default=2, ge=1, le=5)
    channels: dict[str, ChannelPolicy] = Field(default_factory=dict)  # by channel kind; default otherwise

    def channel(self, kind: str) -> ChannelPolicy:
        return self.channels.get(kind) or ChannelPolicy()

    def backoff_after(self, attempts: int) -> dt.timedelta:
        """The pause after the `attempts`-th failed run (1-based); the last step repeats."""
        if not self.backoff_minutes or attempts < 1:
            return dt.timedelta(0)
        return dt.timedelta(minutes=self.backoff_minutes[min(attempts, len(self.backoff_minutes)) - 1])

    def lease(self, kind: str) -> dt.timedelta:
        """How long a deliverer's claim on one message of this kind lasts: `lease_seconds`, or longer if
        one message can take longer (twice timeout × tries + retry delays): a slow send is never re-claimed."""
        ch = self.channel(kind)
        worst = ch.timeout_seconds * (1 + len(self.retry_delays_seconds)) + sum(self.retry_delays_seconds)
        return dt.timedelta(seconds=max(self.lease_seconds, 2 * worst))


class IntakeLimits(Frozen):
    """Checked before a submitted file is read, so a hostile file costs milliseconds, not memory."""

    max_file_mb: float = Field(default=300, gt=0)  # a 1,000,000-row CSV is ~250 MB; read in chunks
    max_unzipped_mb: float = Field(default=300, gt=0)  # XLSX/ODS: all parts together, uncompressed
    max_cells: int = Field(default=6_000_000, ge=1)  # a sheet's extent, rows × columns
    max_columns: int = Field(default=300, ge=1)  # XLSX sheets and CSV lines
    max_cell_chars: int = Field(default=10_000, ge=100)  # one cell's text; a longer one refuses the file
    echo_chars: int = Field(default=200, ge=10)  # a submitted value quoted back in messages and reports
    # A file the system failed on (not the sender's fault) stays in its inbox for the next run; after
    # this many failed runs it is moved to the archive's quarantine folder for an operator to look at.
    quarantine_after_faults: int = Field(default=3, ge=1, le=100)


class WorkingDays(Frozen):
    """Fallback for years chinese-calendar does not cover: weekends plus these lists."""

    holidays: tuple[dt.date, ...] = ()
    makeup_workdays: tuple[dt.date, ...] = ()
    source: str = ""  # where the lists came from: chinese-calendar (lists empty), holidays, holidays-partial
    # False until the State Council publishes the year's arrangement: `campaign check` warns loudly
    makeup_workdays_known: bool = True


class Once(Frozen):
    kind: Literal["once"]
    kickoff: dt.date
    due: dt.date

    @model_validator(mode="after")
    def _order(self) -> Once:
        if self.kickoff > self.due:
            raise ValueError(f"kickoff {self.kickoff} is after due {self.due}")
        return self


class Periodic(Frozen):
    """Quarterly or half-yearly: one instance per period, due on the period's last day."""

    kind: Literal["quarterly", "half_yearly", "yearly"]
    starts: dt.date | None = None  # periods ending before this are not owed


class Rolling(Frozen):
    """All year, no deadline (intake, postings): shown in the calendar, never reminded."""

    kind: Literal["rolling"]


class Checkpoints(Frozen):
    """Owed by each of these dates in turn (e.g. the funds' arrival and execution rates)."""

    kind: Literal["checkpoints"]
    dates: tuple[dt.date, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _order(self) -> Checkpoints:
        if list(self.dates) != sorted(set(self.dates)):
            raise ValueError("checkpoint dates must be distinct and in order")
        return self


class AfterEvent(Frozen):
    """Owed once per subject, within some working days of an event: a project recommended upward
    must have its 包保 leader named within N working days of the approval."""

    kind: Literal["after_event"]
    event: Literal["recommendation_approved"]
    within_working_days: int = Field(ge=1, le=60)


Schedule = Annotated[Once | Periodic | Rolling | Checkpoints | AfterEvent, Field(discriminator="kind")]


class Obligation(Frozen):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    short: str = Field(default="", max_length=8)  # a few characters for narrow places (column headers)
    source: str
    owed_by: tuple[Level, ...] = ()
    units: tuple[str, ...] = ()  # explicit units, in addition to levels
    subject: Literal["unit", "recommended_project"] = "unit"
    schedule: Schedule
    count: int | dict[Level, int] = 1  # e.g. agri-tech trainings: city >= 2, county >= 1
    evidence: tuple[str, ...] = ()
    how_to_submit: str = ""
    flow: str | None = None
    reminders: ReminderPolicy | None = None  # None: the campaign's policy
    escalate: bool = True
    # Levels whose count is only a principle (三(四) 县级"原则上不少于1次"): reminded before the due date
    # and listed as late in the status tables, but neither told they are overdue nor escalated, nor
    # counted in the assessment's 服务基地.
    principle_only: tuple[Level, ...] = ()
    kickoff_notice: bool = True  # False: the event that starts it already told the unit (e.g. 包保)

    @property
    def heading(self) -> str:
        """ "三(一) 实地调研": clause and short title, whole, where a column is narrow."""
        return f"{self.source} {self.short or self.title}"

    def count_for(self, level: Level) -> int:
        return self.count if isinstance(self.count, int) else self.count.get(level, 0)


class Quotas(Frozen):
    illustrative: bool
    note: str
    total: int = Field(ge=0)
    by_city: dict[str, int]
    by_level: dict[Level, int] = {}  # 一 "省、市、县三级": the plan split by the level that names the base

    @model_validator(mode="after")
    def _sums(self) -> Quotas:
        if sum(self.by_city.values()) != self.total:
            raise ValueError(f"by_city adds up to {sum(self.by_city.values())}, not total {self.total}")
        if self.by_level and sum(self.by_level.values()) != self.total:
            raise ValueError(f"by_level adds up to {sum(self.by_level.values())}, not total {self.total}")
        return self


class ApplicationWindow(Frozen):
    start: dt.date
    end: dt.date


# ---------------------------------------------------------------- incubation pool (三(三))
class Tilt(StrEnum):
    """Policy-tilt factors (三(二)) that raise a project's priority in its pool."""

    poverty_employment = "poverty_employment"  # employs many people lifted out of poverty
    assistance_workshop = "assistance_workshop"  # a named employment-assistance workshop
    key_county = "key_county"  # in a provincial key rural-revitalisation county
    border_village = "border_village"
    hollow_village = "hollow_village"
    beef_cattle = "beef_cattle"
    speciality = "speciality"  # 一县一业、一乡一特、一村一品
    commendation = "commendation"  # commended in epidemic control / farming recovery
    # 三(五) 三个优先 (the first, the 三个助力 directions, counts by `direction_weight`):
    growth_stage = "growth_stage"  # in its growth, rising or promising stage
    demonstrative = "demonstrative"  # a demonstrative, representative agricultural or agri-related project


# 三(二) "…可结合实际给予适当政策倾斜；重点支持一县一业、一乡一特、一村一品申报项目": the modest tilts, and
# the one given key support, which may weigh no less than any of them.
MODEST_TILTS = (
    Tilt.poverty_employment,
    Tilt.assistance_workshop,
    Tilt.key_county,
    Tilt.border_village,
    Tilt.hollow_village,
    Tilt.beef_cattle,
)
KEY_SUPPORT = Tilt.speciality


class AdmissionBar(Frozen):
    """A pool's admission conditions (入库条件). Area: meeting either of the two is enough."""

    min_years_operating: float = Field(default=0, ge=0)
    min_premises_m2: float | None = Field(default=None, ge=0)
    min_planted_mu: float | None = Field(default=None, ge=0)
    min_entrepreneurs_driven: int = Field(default=0, ge=0)
    min_jobs: int = Field(default=0, ge=0)
    min_avg_wage_yuan: float = Field(default=0, ge=0)


class PoolRules(Frozen):
    """The three-level incubation pool: who is admitted, how each pool is ordered, who approves."""

    admission: dict[Level, AdmissionBar]  # the level's default bar
    unit_admission: dict[str, AdmissionBar] = {}  # a unit's own filed bar (may be lower than its level's)
    poverty_employment_min_jobs: int = Field(default=5, ge=1)
    # 三(三) the pool takes applications all year: years of operation are measured on the day each file
    # arrives. A year whose notice fixes one day for the pool sets it here. (The review's 申请日 of 三(六)
    # is `review.application_date`, not this.)
    years_operating_on: dt.date | None = None
    key_counties: tuple[str, ...] = ()
    key_counties_note: str = ""
    weights: dict[Tilt, float]
    direction_weight: float = Field(default=1.0, ge=0)  # per direction named (三个助力)
    # 三(三) "对经评审命名且符合上级入库条件的项目做到应推尽推": in 2022 a project goes up only once it is
    # reviewed and named (the review's naming decision). A year whose notice recommends straight from
    # admission turns this on: the pool then proposes every admitted project meeting the upper bar.
    propose_on_admission: bool = False
    approval_timeout_minutes: float = Field(default=240, gt=0)
    artifact_rows: int = Field(default=300, ge=10, le=5000)  # rows per pool table artifact

    @model_validator(mode="after")
    def _levels(self) -> PoolRules:
        missing = [level.value for level in Level if level not in self.admission]
        if missing:
            raise ValueError(f"admission bars missing for {', '.join(missing)}")
        supported = self.weights.get(KEY_SUPPORT, 0.0)
        heavier = [t for t in MODEST_TILTS if self.weights.get(t, 0.0) > supported]
        if heavier:
            top = max(heavier, key=lambda t: self.weights[t])
            raise ValueError(
                f"weights.{KEY_SUPPORT.value}（一县一业、一乡一特、一村一品，三(二)“重点支持”）为 {supported:g}，"
                f"低于“适当政策倾斜”的 weights.{top.value}（{self.weights[top]:g}）：重点支持项目的权重"
                "不得低于任一适当倾斜项"
            )
        return self


# ---------------------------------------------------------------- year-round services (三(四), 三(五))
class FundTarget(Frozen):
    arrival_rate: float = Field(ge=0, le=1)  # arrived / allocated
    execution_rate: float = Field(ge=0, le=1)  # executed / allocated


class BaseSubsidySync(Frozen):
    """三(五): the prior year's city-level base subsidies are paid together with the provincial ones."""

    purpose: str  # the fund lines' purpose that is a base subsidy
    fund_year: int
    provincial_source: str
    city_source: str
    tolerance_days: int = Field(default=30, ge=0, le=366)


class FundsRules(Frozen):
    sources: tuple[str, ...] = Field(min_length=1)  # the fund sheet's 资金来源 choices
    # 三(五) "确保专项资金到位率 100%；确保资金执行率 100%": the sources that are 专项资金, the only ones the
    # arrival and execution rates count (the funds checkpoints, the assessment's 资金到位和执行)
    special_sources: tuple[str, ...] = Field(min_length=1)
    provincial_source: str  # the provincial special funds (省级专项资金): never diverted
    eligible_purposes: tuple[str, ...] = Field(min_length=1)
    eligible_note: str = ""
    targets: dict[dt.date, FundTarget]  # per checkpoint date of the funds obligation
    base_subsidy: BaseSubsidySync | None = None

    @model_validator(mode="after")
    def _sources(self) -> FundsRules:
        named = [self.provincial_source, *self.special_sources]
        if self.base_subsidy is not None:
            named += [self.base_subsidy.provincial_source, self.base_subsidy.city_source]
        unknown = [s for s in named if s not in self.sources]
        if unknown:
            raise ValueError(f"sources not listed in `sources`: {', '.join(unknown)}")
        if self.provincial_source not in self.special_sources:
            raise ValueError(f"special_sources：省级专项资金（{self.provincial_source}）须列为专项资金")
        return self


class Services(Frozen):
    """The 三送 services: 包保 leaders and visits, trainings, job postings, funds."""

    leader_roles: tuple[str, ...] = ("主要领导",)  # a unit's one contact with such a role is its 包保 leader
    first_visit_min_working_days: int = Field(
        default=10, ge=0, le=60
    )  # a quarter with fewer left is not owed
    need_categories: tuple[str, ...] = Field(min_length=1)  # 经营管理、产品研发 …
    training_kinds: dict[str, str]  # the training sheet's 培训类别 -> obligation key
    # 三(四) 三送 "涵盖本级全部入库项目": the records that count a pool project as served this year — a
    # visit, a job posting, a training naming it in 关联项目
    served_by: tuple[Literal["走访", "招聘发布", "培训"], ...] = Field(
        default=("走访", "招聘发布", "培训"), min_length=1
    )
    funds: FundsRules


# ---------------------------------------------------------------- 三(六) review, 四(三) assessment, 四(四) publicity
class Criterion(Frozen):
    name: str  # 评分项, as experts write it in the score sheet
    weight: float = Field(gt=0, le=1)  # a level's weights sum to 1; an expert's total is the weighted sum


class FundingTier(Frozen):
    name: str  # 一档
    amount_yuan: float = Field(ge=0)
    up_to_share: float = Field(gt=0, le=1)  # named bases ranked within this share (cumulative) get this tier


class ReviewRules(Frozen):
    """三(六) expert review of city and county bases, naming within quota, recommendation upward."""

    illustrative: bool = False
    note: str = ""
    plan_obligation: str  # the staged review plan (分阶段评审方案), filed as documents
    # 三(六) "市县两级基地评审项目申请日": the reviewed projects' years of operation are measured on it.
    # None: the end of `application_window` (Campaign.application_date).
    application_date: dt.date | None = None
    scores_obligation: str  # the review itself, evidenced by the expert score sheets
    # The province's own round (一 "省、市、县三级"): it reviews and names provincial bases from the
    # projects the cities recommended, on the same score sheet, later in the year. None: no such round.
    provincial_scores_obligation: str | None = None
    experts_per_project: int = Field(ge=1, le=50)
    score_range: tuple[float, float] = (0, 100)  # every criterion is scored in this range
    forbid_own_unit: bool = True  # an expert may not score a project of the unit (employer) they work for
    drop_highest: int = Field(default=1, ge=0)  # expert totals dropped before the mean
    drop_lowest: int = Field(default=1, ge=0)
    criteria: dict[Level, tuple[Criterion, ...]]
    priority_points: float = Field(
        default=1.0, ge=0
    )  # added per point of the pool's priority (三个助力 + 倾斜)
    # Among equal totals, who goes first (三(二) "同等条件下，要优先支持…受到表彰的"): tilts that break ties
    # instead of adding points; then the application number, so a ranking is always the same.
    tie_breakers: tuple[Tilt, ...] = (Tilt.commendation,)
    naming_quota: dict[Level, int]  # bases a reviewing unit of that level may name
    unit_quota: dict[str, int] = {}  # a unit's own quota, where the plan gives one
    tiers: dict[Level, tuple[FundingTier, ...]]
    approval_timeout_minutes: float = Field(default=240, gt=0)

    def scores_obligation_of(self, level: Level) -> str:
        """The obligation a reviewing unit of `level` settles by completing its scoring."""
        if level is Level.province and self.provincial_scores_obligation:
            return self.provincial_scores_obligation
        return self.scores_obligation

    @model_validator(mode="after")
    def _consistent(self) -> ReviewRules:
        if self.drop_highest + self.drop_lowest >= self.experts_per_project:
            raise ValueError("drop_highest + drop_lowest must leave at least one expert's score")
        low, high = self.score_range
        if low >= high:
            raise ValueError("score_range must be (low, high) with low < high")
        for level, criteria in self.criteria.items():
            if abs(sum(c.weight for c in criteria) - 1) > 1e-6:
                raise ValueError(f"criteria.{level}: weights must sum to 1")
        for level, tiers in self.tiers.items():
            shares = [t.up_to_share for t in tiers]
            if shares != sorted(shares) or not shares or shares[-1] != 1:
                raise ValueError(f"tiers.{level}: up_to_share must rise to 1")
        return self


class Measure(StrEnum):
    """What an assessment indicator measures; how each is computed is models/assessment.py's."""

    bases_built = "bases_built"  # bases named at city and county level against the plan (数量)
    startups_and_jobs = "startups_and_jobs"  # start-ups driven + jobs absorbed by named bases (质量)
    poverty_jobs = "poverty_jobs"  # people lifted out of poverty employed by named bases (社会效益)
    income_growth = "income_growth"  # growth of employees' average income at named bases (经济效益)
    funds = "funds"  # arrival and execution rates, factor-method funds included (资金)
    services = "services"  # share of service obligations met: 包保, visits, trainings (服务基地)
    publicity = "publicity"  # share of publicity obligations met (宣传报道)


class Indicator(Frozen):
    measure: Measure
    title: str  # the workbook's sheet name and column header
    weight: float = Field(gt=0)  # points of the total


class FundsMix(Frozen):
    """四(三) 资金到位和执行: the two rates' shares of the indicator's achievement."""

    arrival_rate: float = Field(ge=0, le=1)
    execution_rate: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sum(self) -> FundsMix:
        if abs(self.arrival_rate + self.execution_rate - 1) > 1e-6:
            raise ValueError("arrival_rate + execution_rate must be 1")
        return self


class ServicesMix(Frozen):
    """四(三) 服务基地: the shares of service duties met (met ÷ due) and of 三送 coverage (served ÷ pool)."""

    duties: float = Field(ge=0, le=1)
    coverage: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sum(self) -> ServicesMix:
        if abs(self.duties + self.coverage - 1) > 1e-6:
            raise ValueError("duties + coverage must be 1")
        return self


class AssessmentRules(Frozen):
    """四(三) the year-end target assessment of each city, counties' shares included."""

    illustrative: bool = False
    note: str = ""
    obligation: str  # the province's assessment obligation, met when the scorecards are sent
    final_on: dt.date  # from this day scorecards are final and sent; earlier runs publish a draft
    indicators: tuple[Indicator, ...] = Field(min_length=1)
    service_obligations: tuple[str, ...]
    publicity_obligations: tuple[str, ...]
    factor_source: str  # the fund sheet's source of factor-method funds (因素法下达资金), shown on its own
    income_obligation: str  # the income sheet's obligation
    funds_mix: FundsMix
    services_mix: ServicesMix


class PublicityRules(Frozen):
    """四(四) typical bases and experience articles, recorded in one sheet; the exchange meeting."""

    categories: dict[str, str]  # the sheet's 类别 -> the obligation it counts for
    typical_category: str  # the category that names a base (its project must be in the pool)
    exchange_obligation: str


class IllustrativeValue(Frozen):
    """A value the notice does not give, chosen for the product (示意) until the province sets it.

    `path` names it in this file: dotted keys, a list item by its key (`obligations[leader_assignment]`).
    """

    path: str
    clause: str  # where the notice speaks of it, e.g. 三(四)
    why: str  # what the notice says, and what was chosen


def resolve_path(data: Any, path: str) -> Any:
    """The value at `path` in a dumped campaign (see IllustrativeValue); KeyError if there is none."""
    for part in path.split("."):
        name, _, key = part.partition("[")
        data = data[name] if isinstance(data, dict) else getattr(data, name)
        if key:
            key = key.rstrip("]")
            matches = [item for item in data if item.get("key") == key]
            if not matches:
                raise KeyError(part)
            data = matches[0]
    return data


class ImportMapping(Frozen):
    """Another system's export read as one of our sheets (e.g. 吉林就业信息管理系统's pool export):
    its headers as aliases of our template's, and its codes as our values."""

    source: str  # the system, as people call it
    headers: dict[str, tuple[str, ...]] = {}  # our template's header -> the export's names for it
    values: dict[str, dict[str, str]] = {}  # our template's header -> {the export's code: our value}


class Campaign(Frozen):
    year: int = Field(ge=2020, le=2100)
    draft: bool = False  # written by `campaign new-year`: values marked 待审核 still to be checked
    title: str
    notice: str
    timezone: str = "Asia/Shanghai"
    send_time: dt.time = dt.time(9, 0)
    starts: dt.date
    # A dated run may act from the first kickoff to the last escalation plus this many calendar days
    # (late after-event duties: a December approval's 包保 escalates in January); outside, it refuses.
    run_window_grace_days: int = Field(default=30, ge=0, le=120)
    application_window: ApplicationWindow
    working_days: WorkingDays = WorkingDays()
    reminders: ReminderPolicy = ReminderPolicy()
    escalation: EscalationPolicy = EscalationPolicy()
    delivery: DeliveryPolicy = DeliveryPolicy()
    intake_limits: IntakeLimits = IntakeLimits()
    accepted_extensions: tuple[str, ...] = ("pdf", "doc", "docx", "wps", "ofd", "xls", "xlsx", "et", "zip")
    obligations: tuple[Obligation, ...]
    quotas: Quotas
    pool: PoolRules | None = None
    services: Services | None = None
    review: ReviewRules | None = None
    assessment: AssessmentRules | None = None
    publicity: PublicityRules | None = None
    # Sheets that may also arrive as another system's export, by intake folder (e.g. pool_intake).
    imports: dict[str, ImportMapping] = {}
    # Every value the notice does not give, with its clause: `campaign check` lists them (示意).
    illustrative_values: tuple[IllustrativeValue, ...] = ()

    @model_validator(mode="after")
    def _illustrative_paths(self) -> Campaign:
        dumped = self.model_dump(mode="json")
        unknown = []
        for value in self.illustrative_values:
            try:
                resolve_path(dumped, value.path)
            except (KeyError, TypeError, AttributeError):
                unknown.append(value.path)
        if unknown:
            raise ValueError(f"illustrative_values name no value in this file: {', '.join(unknown)}")
        return self

    @property
    def application_date(self) -> dt.date:
        """三(六) the review's 申请日: the day its applicants' years of operation are measured on."""
        if self.review is not None and self.review.application_date is not None:
            return self.review.application_date
        return self.application_window.end

    def obligation(self, key: str) -> Obligation:
        for ob in self.obligations:
            if ob.key == key:
                return ob
        raise KeyError(key)

    def reminder_policy(self, ob: Obligation) -> ReminderPolicy:
        return ob.reminders or self.reminders
