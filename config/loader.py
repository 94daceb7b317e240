"""Read the YAML files and check them as a whole: one ConfigError names every problem, file and field."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from config.errors import ConfigError, ConfigProblem
from config.flows import DATED
from config.schema import Campaign, Checkpoints, Level, Once, Periodic, Regions, Unit
from config.settings import get_settings

M = TypeVar("M", bound=BaseModel)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it


def _display(path: Path, config_dir: Path) -> str:
    try:
        return str(path.resolve().relative_to(config_dir.resolve()))
    except ValueError:
        return str(path)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _parse(path: Path, model: type[M], config_dir: Path) -> M:
    name = _display(path, config_dir)
    if not path.is_file():
        raise ConfigError(name, [ConfigProblem("", "file not found")])
    stat = path.stat()
    return _parse_file(path.resolve(), stat.st_mtime_ns, stat.st_size, model, name)


@lru_cache(maxsize=64)
def _parse_file(path: Path, mtime_ns: int, size: int, model: type[M], name: str) -> M:
    """One file parsed once per version: every flow run and task loads the config, and parsing the
    regions and the campaign costs more than most tasks. The models are frozen, so sharing is safe;
    an edited file has a new mtime or size and is parsed again."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(name, [ConfigProblem("", f"not valid YAML: {exc}")]) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [ConfigProblem(_loc(e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(name, problems) from None


def load_regions(path: Path | None = None) -> Regions:
    config_dir = get_settings().config_dir
    path = path or config_dir / "regions.yaml"
    regions = _parse(path, Regions, config_dir)
    problems: list[ConfigProblem] = []
    keys: dict[str, int] = {}
    for i, unit in enumerate(regions.units):
        if unit.key in keys:
            problems.append(ConfigProblem(f"units[{i}].key", f"{unit.key} is listed twice"))
        keys[unit.key] = i
    by_key = {u.key: u for u in regions.units}
    provinces = [u for u in regions.units if u.level is Level.province]
    if len(provinces) != 1:
        problems.append(ConfigProblem("units", f"exactly one province expected, found {len(provinces)}"))
    expected_parent = {Level.city: Level.province, Level.county: Level.city}
    for i, unit in enumerate(regions.units):
        if unit.level is Level.province:
            if unit.reports_to:
                problems.append(ConfigProblem(f"units[{i}].reports_to", "the province reports to no one"))
            continue
        parent = by_key.get(unit.reports_to or "")
        if parent is None:
            problems.append(
                ConfigProblem(f"units[{i}].reports_to", f"{unit.name}: unknown unit {unit.reports_to!r}")
            )
        elif parent.level is not expected_parent[unit.level]:
            problems.append(
                ConfigProblem(
                    f"units[{i}].reports_to",
                    f"{unit.name} ({unit.level}) must report to a {expected_parent[unit.level]}, "
                    f"not {parent.name} ({parent.level})",
                )
            )
    if problems:
        raise ConfigError(_display(path, config_dir), problems)
    return regions


def available_years(config_dir: Path | None = None) -> list[int]:
    folder = (config_dir or get_settings().config_dir) / "campaigns"
    return sorted(int(p.stem) for p in folder.glob("*.yaml") if p.stem.isdigit())


def _dates(obj: Any, loc: str = "") -> list[tuple[str, dt.date]]:
    """Every date in a parsed model, with its field path."""
    found: list[tuple[str, dt.date]] = []
    if isinstance(obj, dt.date):
        found.append((loc, obj))
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            found += _dates(getattr(obj, name), f"{loc}.{name}" if loc else name)
    elif isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            found += _dates(item, f"{loc}[{i}]")
    return found


def load_campaign(year: int | None = None, *, path: Path | None = None, regions: Regions) -> Campaign:
    settings = get_settings()
    config_dir = settings.config_dir
    if path is None:
        years = available_years(config_dir)
        year = year or settings.year or (years[-1] if years else None)
        if year is None:
            raise ConfigError("campaigns/", [ConfigProblem("", "no campaign file found")])
        path = config_dir / "campaigns" / f"{year}.yaml"
    campaign = _parse(path, Campaign, config_dir)
    name = _display(path, config_dir)
    problems: list[ConfigProblem] = []
    if path.stem.isdigit() and int(path.stem) != campaign.year:
        problems.append(ConfigProblem("year", f"{campaign.year} does not match the file name {path.name}"))
    for loc, day in _dates(campaign):
        # The applicants' material window reaches back into the previous year on purpose (三(六)).
        if loc == "application_window.start":
            continue
        if day.year != campaign.year:
            problems.append(ConfigProblem(loc, f"{day} is outside the campaign year {campaign.year}"))
    units = {u.key: u for u in regions.units}
    seen: set[str] = set()
    for i, ob in enumerate(campaign.obligations):
        where = f"obligations[{i}]"
        if ob.key in seen:
            problems.append(ConfigProblem(f"{where}.key", f"{ob.key} is listed twice"))
        seen.add(ob.key)
        if not ob.owed_by and not ob.units:
            problems.append(ConfigProblem(f"{where}.owed_by", f"{ob.key}: nobody owes it"))
        if ob.flow is not None and ob.flow not in DATED:
            problems.append(
                ConfigProblem(f"{where}.flow", f"unknown flow {ob.flow!r}; one of: {', '.join(DATED)}")
            )
        for j, key in enumerate(ob.units):
            if key not in units:
                problems.append(ConfigProblem(f"{where}.units[{j}]", f"unknown unit {key!r}"))
        if isinstance(ob.schedule, Once) and ob.schedule.kickoff < campaign.starts:
            problems.append(
                ConfigProblem(
                    f"{where}.schedule.kickoff",
                    f"{ob.schedule.kickoff} is before the campaign starts ({campaign.starts})",
                )
            )
        if isinstance(ob.schedule, Periodic) and ob.schedule.starts and ob.schedule.starts < campaign.starts:
            problems.append(
                ConfigProblem(f"{where}.schedule.starts", f"before the campaign starts ({campaign.starts})")
            )
    for key in campaign.quotas.by_city:
        unit = units.get(key)
        if unit is None or unit.level is not Level.city:
            problems.append(ConfigProblem(f"quotas.by_city.{key}", "not a city-level unit in regions.yaml"))
    if campaign.pool is not None:
        for key in campaign.pool.unit_admission:
            if key not in units:
                problems.append(ConfigProblem(f"pool.unit_admission.{key}", "unknown unit"))
        for j, key in enumerate(campaign.pool.key_counties):
            if key not in units:
                problems.append(ConfigProblem(f"pool.key_counties[{j}]", f"unknown unit {key!r}"))
    keys = {ob.key for ob in campaign.obligations}
    if campaign.services is not None:
        for label, key in campaign.services.training_kinds.items():
            if key not in keys:
                problems.append(
                    ConfigProblem(f"services.training_kinds.{label}", f"unknown obligation {key!r}")
                )
        checkpoints = [
            ob.schedule.dates for ob in campaign.obligations if isinstance(ob.schedule, Checkpoints)
        ]
        targets = set(campaign.services.funds.targets)
        if checkpoints and targets != set(checkpoints[0]):
            problems.append(
                ConfigProblem(
                    "services.funds.targets",
                    "needs one target per checkpoint date of the funds obligation "
                    f"({', '.join(d.isoformat() for d in checkpoints[0])})",
                )
            )
    named: list[tuple[str, str | None]] = []
    if campaign.review is not None:
        named += [
            ("review.plan_obligation", campaign.review.plan_obligation),
            ("review.scores_obligation", campaign.review.scores_obligation),
            ("review.provincial_scores_obligation", campaign.review.provincial_scores_obligation),
        ]
        for key in campaign.review.unit_quota:
            if key not in units:
                problems.append(ConfigProblem(f"review.unit_quota.{key}", "unknown unit"))
    if campaign.assessment is not None:
        a = campaign.assessment
        named += [(f"assessment.service_obligations[{j}]", k) for j, k in enumerate(a.service_obligations)]
        named += [
            (f"assessment.publicity_obligations[{j}]", k) for j, k in enumerate(a.publicity_obligations)
        ]
        named += [
            ("assessment.income_obligation", a.income_obligation),
            ("assessment.obligation", a.obligation),
        ]
        # 四(三) "资金到位和执行情况（含因素法下达资金）": the factor-method funds are part of the rates
        if campaign.services is not None and a.factor_source not in campaign.services.funds.special_sources:
            problems.append(
                ConfigProblem(
                    "assessment.factor_source",
                    f"{a.factor_source} is not one of services.funds.special_sources "
                    "(因素法下达资金计入专项资金到位率、执行率)",
                )
            )
    if campaign.publicity is not None:
        named += [(f"publicity.categories.{c}", k) for c, k in campaign.publicity.categories.items()]
        named.append(("publicity.exchange_obligation", campaign.publicity.exchange_obligation))
        if campaign.publicity.typical_category not in campaign.publicity.categories:
            problems.append(ConfigProblem("publicity.typical_category", "not one of publicity.categories"))
    problems += [
        ConfigProblem(where, f"unknown obligation {key!r}")
        for where, key in named
        if key is not None and key not in keys
    ]
    if problems:
        raise ConfigError(name, problems)
    return campaign


@dataclass(frozen=True)
class CampaignConfig:
    """The regions and one year's campaign, checked together."""

    regions: Regions
    campaign: Campaign

    @property
    def units(self) -> tuple[Unit, ...]:
        return self.regions.units

    @property
    def province(self) -> Unit:
        """The provincial unit: the one that receives approvals, flags and escalations from cities."""
        return next(u for u in self.units if u.level is Level.province)

    def require(self, section: str, what: str) -> Any:
        """A campaign section a flow cannot work without (`pool`, `services`), or a ConfigError saying so."""
        value = getattr(self.campaign, section)
        if value is None:
            raise ConfigError(
                f"campaigns/{self.campaign.year}.yaml",
                [ConfigProblem(section, f"the campaign has no `{section}:` section ({what})")],
            )
        return value

    def unit(self, key: str) -> Unit:
        for u in self.regions.units:
            if u.key == key:
                return u
        raise KeyError(key)


def load_config(year: int | None = None, *, campaign_path: Path | None = None) -> CampaignConfig:
    regions = load_regions()
    return CampaignConfig(regions, load_campaign(year, path=campaign_path, regions=regions))
