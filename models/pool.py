"""The three-level incubation pool's rules (三(三)): admission, policy tilt and priority, recommendation.

Pure and vectorised over pandas frames; the bars, weights and key counties come from the campaign's
`pool:` section, the hierarchy from regions.yaml — nothing here restates a number of the notice.

- 逐级推荐: no application enters the provincial pool; one declaring it is judged for the city's pool.
- 应收尽收: an application is judged against the bar of the pool at its declared level (the owning
  unit's own filed bar, else the level's). If it falls short there but meets a lower pool's bar, it
  is admitted to that lower pool, and the note says so.
- 应推尽推: a project reviewed and named at its level that also meets the bar of the pool above (the
  owning unit's `reports_to`: county → city → province; 梅河口市 and 长白山管委会 → province) is
  recommended upward, one level at a time (`upper_bar_notes` tells which do; the review's naming
  decides). Only a year with `pool.propose_on_admission` proposes admitted projects straight away
  (`proposals`), for an operator's approval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from config.schema import LEVEL_LABELS, AdmissionBar, Level, PoolRules, Tilt, Unit
from models.applications import DECLARED_LEVELS
from models.sheets import RegionIndex
from models.workbook import fold

RANK = {Level.county: 1, Level.city: 2, Level.province: 3}
LEVEL_OF_LABEL = {LEVEL_LABELS[level]: level for level in Level}
TILT_LABELS = {
    Tilt.poverty_employment: "带动脱贫人口创业就业较多",
    Tilt.assistance_workshop: "就业帮扶车间",
    Tilt.key_county: "省级乡村振兴重点扶持县",
    Tilt.border_village: "边境村",
    Tilt.hollow_village: "空心村",
    Tilt.beef_cattle: "肉牛养殖",
    Tilt.speciality: "一县一业/一乡一特/一村一品",
    Tilt.commendation: "疫情防控或保耕复产表彰",
    Tilt.growth_stage: "成长期、上升期或有潜力",
    Tilt.demonstrative: "示范性、代表性农业或涉农项目",
}
# The application column each tilt is read from (two are derived, below).
TILT_COLUMNS = {tilt: tilt.value for tilt in Tilt} | {Tilt.commendation: "commended"}
TEXT_TILTS = (Tilt.speciality, Tilt.growth_stage)  # a choice of text; "无" is no tilt
BAR_FIELDS = list(AdmissionBar.model_fields)
STRAIGHT_UP_NOTE = "省级培育库只收经市级评审命名后逐级推荐的项目，按市级培育库审核"
assert set(DECLARED_LEVELS) == set(LEVEL_OF_LABEL)


@dataclass(frozen=True)
class Hierarchy:
    units: dict[str, Unit]

    @classmethod
    def of(cls, units: tuple[Unit, ...] | list[Unit]) -> Hierarchy:
        return cls({u.key: u for u in units})

    def chain(self, key: str) -> dict[Level, str]:
        """The unit and every unit above it, by level."""
        out: dict[Level, str] = {}
        unit: Unit | None = self.units[key]
        while unit is not None:
            out.setdefault(unit.level, unit.key)
            unit = self.units.get(unit.reports_to or "")
        return out

    def leaves(self) -> list[Unit]:
        """Units nobody reports to: the counties, plus 梅河口市 and 长白山管委会."""
        parents = {u.reports_to for u in self.units.values()}
        return [u for u in self.units.values() if u.key not in parents]

    def jurisdiction(self, key: str) -> frozenset[str]:
        """A unit and every unit below it."""
        return frozenset(k for k in self.units if key in self.chain(k).values())

    def region_index(self, *, leaves_only: bool = True) -> RegionIndex:
        """Names and codes that may be written for a unit: the county-level ones, or every unit."""
        lookup: dict[str, str] = {}
        former: dict[str, str] = {}
        for unit in self.leaves() if leaves_only else self.units.values():
            for text in (unit.key, unit.name, unit.bureau):
                lookup[fold(text)] = unit.key
            for code in unit.former_codes:
                former[code] = unit.key
        return RegionIndex(lookup, former, {k: u.name for k, u in self.units.items()})


def bar_for(rules: PoolRules, unit: Unit) -> AdmissionBar:
    return rules.unit_admission.get(unit.key) or rules.admission[unit.level]


def bars_frame(rules: PoolRules, hierarchy: Hierarchy) -> pd.DataFrame:
    """Every unit's admission bar, one row per unit key."""
    rows = {key: bar_for(rules, unit).model_dump() for key, unit in hierarchy.units.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=BAR_FIELDS)


def years_operating(founded_on: pd.Series, on: dt.date) -> pd.Series:
    days = (pd.Timestamp(on) - pd.to_datetime(founded_on)).dt.days
    return days / 365.25


def unmet(apps: pd.DataFrame, bars: pd.DataFrame, whose: pd.Series) -> pd.Series:
    """Per row, why it falls short of the aligned bar ("" if it meets it); `whose` names each bar's unit.

    Reason text is built only for the rows that fall short: most rows meet most criteria.
    """
    reasons = pd.Series("", index=apps.index)

    def fmt(values: pd.Series) -> pd.Series:
        return values.round(1).map("{:g}".format)

    def add(mask: pd.Series, text: Callable[[pd.Series], pd.Series]) -> None:
        if mask.any():
            reasons[mask] = reasons[mask] + text(mask) + "；"

    years, min_years = apps["years_operating"], bars["min_years_operating"]
    add(
        years < min_years,
        lambda m: "经营年限" + fmt(years[m]) + "年，" + whose[m] + "标准" + fmt(min_years[m]) + "年",
    )
    premises_bar, planted_bar = bars["min_premises_m2"], bars["min_planted_mu"]
    has_area_bar = premises_bar.notna() | planted_bar.notna()
    area_met = (apps["premises_m2"] >= premises_bar.fillna(np.inf)) | (
        apps["planted_mu"] >= planted_bar.fillna(np.inf)
    )
    add(
        has_area_bar & ~area_met,
        lambda m: (
            "经营场所"
            + fmt(apps["premises_m2"][m])
            + "平方米、种植"
            + fmt(apps["planted_mu"][m])
            + "亩，"
            + whose[m]
            + "标准为场所"
            + fmt(premises_bar[m].fillna(0))
            + "平方米或种植"
            + fmt(planted_bar[m].fillna(0))
            + "亩"
        ),
    )
    for field, bar_field, label, unit in (
        ("entrepreneurs_driven", "min_entrepreneurs_driven", "带动创业", "人"),
        ("jobs", "min_jobs", "吸纳就业", "人"),
        ("avg_wage_yuan", "min_avg_wage_yuan", "人均年工资", "元"),
    ):
        value, bar = apps[field], bars[bar_field]
        add(
            value < bar,
            lambda m, v=value, b=bar, lb=label, u=unit: (
                lb + fmt(v[m]) + u + "，" + whose[m] + "标准" + fmt(b[m]) + u
            ),
        )
    return reasons.str.rstrip("；")


def derive(
    apps: pd.DataFrame, rules: PoolRules, hierarchy: Hierarchy, application_date: dt.date
) -> pd.DataFrame:
    """Add tilts, priority, and the pool each application is admitted to (or judged against)."""
    apps = apps.copy()
    apps["years_operating"] = years_operating(apps["founded_on"], application_date)
    apps["poverty_employment"] = apps["poverty_jobs"] >= rules.poverty_employment_min_jobs
    apps["key_county"] = apps["region_key"].isin(rules.key_counties)
    tilts = pd.DataFrame({t: apps[col] for t, col in TILT_COLUMNS.items() if t not in TEXT_TILTS})
    tilts[Tilt.speciality] = apps["speciality"] != "无"
    tilts[Tilt.growth_stage] = apps["growth_stage"] != "无"
    weights = pd.Series({t: rules.weights.get(t, 0.0) for t in tilts.columns})
    n_directions = np.where(apps["directions"] == "", 0, apps["directions"].str.count("、") + 1)
    apps["priority"] = tilts.astype(float).dot(weights) + rules.direction_weight * n_directions

    bars = bars_frame(rules, hierarchy)
    chains = {key: hierarchy.chain(key) for key in apps["region_key"].unique()}
    ranks = {key: RANK[unit.level] for key, unit in hierarchy.units.items()}
    names = {key: unit.name for key, unit in hierarchy.units.items()}
    region_rank = apps["region_key"].map(ranks)
    asked = apps["declared_level"].map({k: RANK[v] for k, v in LEVEL_OF_LABEL.items()})
    # 逐级推荐: the provincial pool takes only what a city recommends, never an application
    straight_up = asked >= RANK[Level.province]
    declared = np.maximum(np.minimum(asked, RANK[Level.city]), region_rank)
    ordered = sorted(Level, key=RANK.__getitem__, reverse=True)  # province, city, county
    owners, met, notes = {}, {}, {}
    for level in ordered:
        owner = apps["region_key"].map({k: chain.get(level) for k, chain in chains.items()})
        eligible = owner.notna() & (declared >= RANK[level])
        # judged only where the application reaches this level (most declare the county's pool)
        reasons = pd.Series("", index=apps.index, dtype=object)
        if eligible.any():
            judged = owner[eligible]
            aligned = bars.reindex(judged).set_axis(judged.index)
            reasons[eligible] = unmet(apps[eligible], aligned, judged.map(names)).astype(object)
        owners[level], met[level], notes[level] = owner, eligible & (reasons == ""), reasons
    # The highest pool at or below the declared level whose bar is met; else the declared one, refused.
    chosen = np.select([met[lv] for lv in ordered], [lv.value for lv in ordered], default="")
    top = np.select([declared == RANK[lv] for lv in ordered], [lv.value for lv in ordered], default="")
    admitted = chosen != ""
    level = np.where(admitted, chosen, top)
    apps["admitted"] = admitted
    apps["level"] = level
    apps["pool_unit"] = ""
    apps["admission_note"] = ""
    for lv in ordered:
        here = level == lv.value
        apps.loc[here, "pool_unit"] = owners[lv][here]
        refused = here & ~admitted
        apps.loc[refused, "admission_note"] = "未达" + LEVEL_LABELS[lv] + "入库条件：" + notes[lv][refused]
    for lv in ordered:  # admitted below the declared level: say why
        lower = admitted & (top == lv.value) & (level != lv.value)
        if lower.any():
            got = pd.Series(level[lower], index=apps.index[lower]).map(
                {x.value: LEVEL_LABELS[x] for x in Level}
            )
            apps.loc[lower, "admission_note"] = (
                "未达" + LEVEL_LABELS[lv] + "入库条件（" + notes[lv][lower] + "），按" + got + "入库"
            )
    if straight_up.any():
        apps.loc[straight_up, "admission_note"] = STRAIGHT_UP_NOTE + apps.loc[
            straight_up, "admission_note"
        ].where(apps.loc[straight_up, "admission_note"] == "", "；" + apps.loc[straight_up, "admission_note"])
    return apps


def tilt_labels(row: pd.Series) -> str:
    flags = [
        label for tilt, label in TILT_LABELS.items() if tilt not in TEXT_TILTS and row[TILT_COLUMNS[tilt]]
    ]
    flags += [row[TILT_COLUMNS[t]] for t in TEXT_TILTS if row[TILT_COLUMNS[t]] != "无"]
    return "、".join(flags)


def upper_bar_notes(pool: pd.DataFrame, rules: PoolRules, hierarchy: Hierarchy, on: dt.date) -> pd.Series:
    """Whether each project meets the bar of the pool above its `pool_unit` (应推尽推's condition).

    `pool`: projects with `pool_unit` (the pool they are in, or the unit that named them) and the bar
    fields. Returns "" where the upper bar is met, what falls short otherwise, None where there is no
    pool above (the province).
    """
    pool = pool.assign(years_operating=years_operating(pool["founded_on"], on))
    units = hierarchy.units
    upper = pool["pool_unit"].map({k: u.reports_to for k, u in units.items()})
    bars = bars_frame(rules, hierarchy).reindex(upper.fillna("")).set_axis(pool.index)
    notes = unmet(pool, bars, upper.map({k: u.name for k, u in units.items()}).fillna(""))
    return notes.astype(object).where(upper.notna(), None)


def proposals(pool: pd.DataFrame, rules: PoolRules, hierarchy: Hierarchy, on: dt.date) -> pd.DataFrame:
    """Which admitted projects to propose one level up, in a year with `pool.propose_on_admission`.

    `pool`: admitted projects with their current pool (`level`, `pool_unit`: the highest pool they
    have reached) and the bar fields; projects already proposed to the next level are left out by
    the caller. Returns `pool`'s rows that qualify, with `to_unit` and `to_level`.
    """
    if pool.empty:
        return pool.assign(to_unit=[], to_level=[])
    units = hierarchy.units
    ok = upper_bar_notes(pool, rules, hierarchy, on).eq("")
    upper = pool.loc[ok, "pool_unit"].map({k: u.reports_to for k, u in units.items()})
    return pool[ok].assign(to_unit=upper, to_level=upper.map({k: u.level.value for k, u in units.items()}))
