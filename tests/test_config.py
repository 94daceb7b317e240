"""The shipped config is valid and says what the notice says; broken files fail loudly and write nothing."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import pytest
import yaml

from config import Level, load_config
from config.errors import ConfigError
from config.settings import get_settings
from tests.helpers import edit_yaml


def test_hierarchy_follows_the_notice_not_the_code_prefix() -> None:
    cfg = load_config()
    by_key = {u.key: u for u in cfg.units}
    cities = [u for u in cfg.units if u.level is Level.city]
    counties = [u for u in cfg.units if u.level is Level.county]
    assert len(cities) == 11 and len(counties) == 59  # 60 county-level units; 梅河口市 acts as a city
    assert {u.name for u in cities} >= {"长白山管委会", "梅河口市", "延边朝鲜族自治州"}
    assert by_key["220581"].reports_to == "220000" and by_key["220581"].level is Level.city
    assert by_key["JL-CBS"].name == "长白山管委会" and by_key["JL-CBS"].reports_to == "220000"
    assert by_key["220184"].reports_to == "220100" and "220381" in by_key["220184"].former_codes
    assert all(by_key[u.reports_to].level is Level.city for u in counties if u.reports_to)


def test_campaign_2022_holds_the_calendar() -> None:
    campaign = load_config(2022).campaign
    keys = {ob.key for ob in campaign.obligations}
    assert {
        "june_survey",
        "standards_filing",
        "pool_intake",
        "leader_assignment",
        "leader_visits",
        "entrepreneur_training",
        "agri_tech_training",
        "job_postings",
        "funds_tracking",
        "review_plan",
        "base_review",
        "provincial_review",
        "typical_bases",
        "experience_article",
        "exchange_meeting",
        "income_report",
        "annual_assessment",
    } == keys
    june = campaign.obligation("june_survey")
    assert june.schedule.due == dt.date(2022, 6, 30)  # type: ignore[union-attr]
    agri = campaign.obligation("agri_tech_training")
    assert (agri.count_for(Level.city), agri.count_for(Level.county)) == (2, 1)
    assert campaign.quotas.illustrative and campaign.quotas.total == 120
    assert campaign.obligation("base_review").schedule.due == dt.date(2022, 10, 31)  # type: ignore[union-attr]
    provincial = campaign.obligation("provincial_review")  # 一 三级基地: the province names its own, later
    assert provincial.owed_by == (Level.province,)
    assert provincial.schedule.due == dt.date(2022, 12, 15)  # type: ignore[union-attr]
    assert campaign.review is not None
    assert campaign.review.scores_obligation_of(Level.province) == "provincial_review"
    assert campaign.review.scores_obligation_of(Level.county) == "base_review"
    assert (
        campaign.pool is not None and not campaign.pool.propose_on_admission
    )  # 三(三): named first, then up


def test_3_2_speciality_projects_weigh_at_least_as_much_as_any_tilt() -> None:
    """三(二): 带动脱贫人口创业就业较多、就业帮扶车间、省级乡村振兴重点扶持县、边境村、空心村、肉牛养殖 "可结合实际
    给予适当政策倾斜"; "重点支持一县一业、一乡一特、一村一品申报项目". Key support is not less than a modest
    tilt: in the 2022 file (weights 示意) the speciality weighs as much as the heaviest tilt, 3."""
    from config.schema import Tilt

    weights = load_config(2022).campaign.pool.weights  # type: ignore[union-attr]
    tilts = (
        Tilt.poverty_employment,
        Tilt.assistance_workshop,
        Tilt.key_county,
        Tilt.border_village,
        Tilt.hollow_village,
        Tilt.beef_cattle,
    )
    assert weights[Tilt.speciality] == 3 == max(weights[t] for t in tilts)


def _copy_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "config"
    shutil.copytree(get_settings().config_dir, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setenv("CAMPAIGN_CONFIG_DIR", str(target))
    get_settings.cache_clear()
    return target


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            lambda d: d["obligations"][0]["schedule"].update(due="2023-06-30"),
            "obligations[0].schedule.due",
            "outside the campaign year 2022",
        ),
        (lambda d: d["obligations"][1].update(units=["229999"]), "obligations[1].units[0]", "unknown unit"),
        (lambda d: d["obligations"][0].pop("title"), "obligations[0].title", "Field required"),
        (
            lambda d: d["reminders"].update(before_due_working_days=[10, -1]),
            "reminders.before_due_working_days[1]",
            "greater than or equal to 1",
        ),
        (lambda d: d["quotas"]["by_city"].update({"220102": 3}), "quotas", "adds up to 123"),
        (
            lambda d: d["obligations"][0]["schedule"].update(kickoff="2022-07-01"),
            "obligations[0].schedule",
            "kickoff 2022-07-01 is after due",
        ),
        (
            lambda d: d["review"]["criteria"]["county"][0].update(weight=0.5),
            "review",
            "criteria.county: weights must sum to 1",
        ),
        (lambda d: d["review"].update(drop_highest=3, drop_lowest=2), "review", "at least one expert"),
        (
            lambda d: d["assessment"].update(income_obligation="income"),
            "assessment.income_obligation",
            "unknown",
        ),
        (
            lambda d: d["publicity"].update(typical_category="典型"),
            "publicity.typical_category",
            "not one of",
        ),
        (  # a typo would have served a deployment without a schedule
            lambda d: d["obligations"][1].update(flow="standard_filing"),
            "obligations[1].flow",
            "unknown flow 'standard_filing'",
        ),
        (  # a form flow has no schedule to remind by
            lambda d: d["obligations"][1].update(flow="record_submission"),
            "obligations[1].flow",
            "unknown flow 'record_submission'",
        ),
        (  # 四(三) "资金到位和执行情况（含因素法下达资金）": factor-method funds are special funds
            lambda d: d["services"]["funds"].update(special_sources=["省级专项资金"]),
            "assessment.factor_source",
            "not one of services.funds.special_sources",
        ),
        (
            lambda d: d["services"]["funds"].update(special_sources=["因素法下达资金"]),
            "services.funds",
            "special_sources：省级专项资金（省级专项资金）须列为专项资金",
        ),
        (  # 三(二) 重点支持 speciality projects: never below an 适当倾斜 tilt
            lambda d: d["pool"]["weights"].update(speciality=1),
            "pool",
            "weights.speciality（一县一业、一乡一特、一村一品，三(二)“重点支持”）为 1，低于“适当政策倾斜”的 "
            "weights.poverty_employment（3）",
        ),
        (  # an illustrative value must name a value of the file
            lambda d: d["illustrative_values"].append(
                {"path": "pool.wieghts", "clause": "三(三)", "why": "x"}
            ),
            "illustrative_values name no value in this file",
            "pool.wieghts",
        ),
    ],
)
def test_broken_campaign_names_file_and_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change,
    path: str,
    message: str,
) -> None:
    target = _copy_config(tmp_path, monkeypatch)
    edit_yaml(target / "campaigns" / "2022.yaml", change)
    with pytest.raises(ConfigError) as err:
        load_config(2022)
    text = str(err.value)
    assert "campaigns/2022.yaml" in text and path in text and message in text, text
    get_settings.cache_clear()


def test_broken_regions_names_the_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _copy_config(tmp_path, monkeypatch)

    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["units"][3]["reports_to"] = "220102"  # a county reporting to a county

    edit_yaml(target / "regions.yaml", change)
    with pytest.raises(
        ConfigError, match=r"regions.yaml: units\[3\].reports_to: 宽城区 \(county\) must report to a city"
    ):
        load_config()
    get_settings.cache_clear()


def test_next_year_is_a_copied_file_with_new_dates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _copy_config(tmp_path, monkeypatch)
    text = (target / "campaigns" / "2022.yaml").read_text(encoding="utf-8")
    text = (
        text.replace("2022-", "2023-").replace("year: 2022", "year: 2023").replace("2021-06-01", "2022-06-01")
    )
    (target / "campaigns" / "2023.yaml").write_text(text, encoding="utf-8")
    campaign = load_config(2023).campaign
    assert campaign.obligation("june_survey").schedule.due == dt.date(2023, 6, 30)  # type: ignore[union-attr]
    assert load_config().campaign.year == 2023, "the newest file is the default campaign"
    get_settings.cache_clear()


@pytest.mark.usefixtures("prefect_harness")
def test_flow_with_broken_config_fails_and_writes_nothing(env: dict[str, object]) -> None:
    from sqlmodel import select

    from flows.june import june_survey
    from models.db import session_scope
    from models.tables import FlowRunAudit, OutboxMessage, Unit

    edit_yaml(Path(str(env["config_dir"])) / "campaigns" / "2022.yaml", lambda d: d.pop("starts"))
    with pytest.raises(ConfigError, match=r"campaigns/2022.yaml: starts: Field required"):
        june_survey(today=dt.date(2022, 6, 23))
    with session_scope() as session:
        for table in (Unit, OutboxMessage, FlowRunAudit):
            assert session.exec(select(table)).all() == []


def test_yaml_is_plain_data() -> None:
    raw = yaml.safe_load((get_settings().config_dir / "campaigns" / "2022.yaml").read_text(encoding="utf-8"))
    assert raw["year"] == 2022


@pytest.mark.usefixtures("prefect_harness")
def test_a_year_chinese_calendar_does_not_know_runs_on_the_config_lists(env: dict[str, object]) -> None:
    """2027 is past chinese-calendar 1.11.0: the run warns once and uses the campaign's own lists."""
    from flows.june import june_survey
    from models import workdays
    from tests.helpers import outbox

    config_dir = Path(str(env["config_dir"]))
    text = (config_dir / "campaigns" / "2022.yaml").read_text(encoding="utf-8")
    text = (
        text.replace("2022-", "2027-").replace("year: 2022", "year: 2027").replace("2021-06-01", "2026-06-01")
    )
    text = text.replace("holidays: []", "holidays: [2027-06-25]")  # a rest day the config declares
    (config_dir / "campaigns" / "2027.yaml").write_text(text, encoding="utf-8")
    workdays._warned_years.difference_update({2027, 2028})

    seen: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger("models.workdays").addHandler(handler)
    try:
        june_survey(today=dt.date(2027, 6, 22))  # D-5 is 06-22, not 06-23, because 06-25 is a rest day
    finally:
        logging.getLogger("models.workdays").removeHandler(handler)
    assert {m.step for m in outbox()} == {"D-5"}
    # one warning per unknown year: 2027, and 2028 where the year-end duties' escalations fall
    assert [r.getMessage()[:45] for r in seen] == [
        "chinese-calendar has no holiday data for 2027",
        "chinese-calendar has no holiday data for 2028",
    ]


def test_nothing_imports_upward() -> None:
    """flows → tasks → models → config: each layer imports only the layers below it (and models never
    Prefect), so a rule can be tested without a server and config can be read by anything."""
    import ast

    repo = Path(__file__).resolve().parents[1]
    below = {
        "config": set(),
        "models": {"config"},
        "tasks": {"config", "models"},
        "flows": {"config", "models", "tasks"},
    }
    upward = []
    for layer, allowed in below.items():
        for path in sorted((repo / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                for name in names:
                    top = name.split(".")[0]
                    if (top in below and top != layer and top not in allowed) or (
                        layer in ("config", "models") and top == "prefect"
                    ):
                        upward.append(f"{path.relative_to(repo)} imports {name}")
    assert upward == []


def test_check_lists_every_value_the_notice_does_not_give(capsys: pytest.CaptureFixture[str]) -> None:
    """Values chosen for the product, not given by 吉人社发〔2022〕17号, each with its clause, as operators
    read them (tests/test_notice_values.py checks that the list misses none)."""
    from flows.cli import main

    assert main(["check", "--year", "2022"]) == 0
    out = capsys.readouterr().out
    assert "示意值（通知未给出，须由省厅确认或替换）：30 项" in out
    for line in (
        '四(二)  reminders = {"before_due_working_days": [10, 5, 1], "on_due_day": true}',
        "四(二)  escalation = ",
        "三(四)  obligations[leader_assignment].schedule.within_working_days = 5",
        "三(四)  services.first_visit_min_working_days = 10",
        '三(四)  obligations[leader_visits].schedule.starts = "2022-07-01"',
        '三(四)  obligations[entrepreneur_training].schedule.starts = "2022-07-01"',
        '三(四)  services.served_by = ["走访", "招聘发布", "培训"]',
        '三(三)  pool.unit_admission = {"220723": ',
        "三(二)  pool.poverty_employment_min_jobs = 5",
        "三(二)、三(五)  pool.weights = ",
        '三(五)  services.funds.special_sources = ["省级专项资金", "因素法下达资金"]',
        "三(五)  services.funds.targets = ",
        "三(五)  services.funds.base_subsidy.tolerance_days = 30",
        "一  obligations[provincial_review].schedule = ",
        "四(三)  obligations[annual_assessment].schedule = ",
        "四(三)  assessment.indicators = ",
        '四(三)  assessment.funds_mix = {"arrival_rate": 0.5, "execution_rate": 0.5}',
        "四(四)  obligations[exchange_meeting].schedule = ",
    ):
        assert line in out, line


def test_2_naming_quotas_are_checked_against_the_plan_of_120(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """一 "年内计划建设省、市、县三级…基地120个". The 2022 file's quotas (示意) name exactly the plan: the
    province 27, the 11 city-level units 3 each (长春市 4) = 34, the 59 counties 1 each = 59. But a year
    counts each base once, at its highest level of that year: with no earlier city bases on record the
    provincial round adds none, so 59 + 34 = 93 is what 2022 can reach, and each city its own quota and
    its counties' (松原市 3 + 5 = 8 of 11, 长春市 4 + 11 = 15 of 18, 梅河口市 and 长白山 3 of 6). Raising
    the counties' quota to 2 names 118 against a plan of 59, and 长春市 with its 11 districts and
    counties 4 + 22 = 26 against its 18."""
    from flows.cli import main

    assert main(["check", "--year", "2022"]) == 0
    out = capsys.readouterr().out
    assert "建设计划与命名名额：各级名额与计划一致" in out
    assert "建设计划 120 个，按命名名额最多可达 93 个（县级 59、市级 34、省级 0）" in out
    for line in (
        "松原市：计划 11 个，最多可达 8 个",
        "长春市：计划 18 个，最多可达 15 个",
        "梅河口市：计划 6 个，最多可达 3 个",
        "长白山管委会：计划 6 个，最多可达 3 个",
    ):
        assert line in out, line

    config = _copy_config(tmp_path, monkeypatch)
    edit_yaml(config / "campaigns" / "2022.yaml", lambda d: d["review"]["naming_quota"].update(county=2))
    assert main(["check", "--year", "2022"]) == 0
    out = capsys.readouterr().out
    assert "县级：计划 59 个，命名名额合计 118 个，超出计划 59 个" in out
    assert "长春市：计划 18 个，市县两级命名名额合计 26 个，超出计划" in out
    assert "梅河口市：计划 6 个，市县两级命名名额合计" not in out  # no counties: 3 of its 6
    assert "合计：计划 120 个，命名名额合计 179 个" in out
    assert "省级：" not in out
