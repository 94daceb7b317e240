"""四(三) the year-end assessment and 四(四) publicity, on a fixture year of the small hierarchy.

The figures of 松原市 (with 乾安县 and 长岭县) and 长春市 (with 农安县) are recomputed here by hand from
the records the test writes, and compared with the flow's; the workbook is opened and read back.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlmodel import select

from tests.helpers import city_row, outbox
from tests.pool_data import application, credit_code, write_xlsx
from tests.service_data import (
    CHANGCHUN,
    FUND_HEADERS,
    MEIHEKOU,
    NONGAN,
    PROVINCE,
    QIANAN,
    SONGYUAN,
    TRAINING_HEADERS,
    fund,
    training,
    use_small_hierarchy,
    write_sheet,
)

YEAR_END = dt.date(2022, 12, 31)
INCOME_HEADERS = ["项目名称", "统一社会信用代码", "上年度员工人均年收入（元）", "本年度员工人均年收入（元）"]
PUBLICITY_HEADERS = ["类别", "标题", "项目名称", "统一社会信用代码", "发布媒体", "发布日期"]


def _nongan(n: int, **overrides: Any) -> dict[str, Any]:
    return application(
        n,
        **{
            "项目名称": f"农安蔬菜项目{n}",
            "统一社会信用代码": credit_code(n, NONGAN),
            "所在县（市、区）": "农安县",
        }
        | overrides,
    )


@pytest.fixture
def year(env: dict[str, Any], prefect_harness: None) -> dict[str, Any]:
    """The year's records: pools, named bases, trainings, funds; the inboxes for the flows' sheets."""
    from config import load_config
    from models.clock import moment
    from models.db import session_scope
    from models.tables import NamedBase, PoolApplication
    from tasks.funds import fund_intake
    from tasks.pool import take_in_workbook
    from tasks.services import update_progress
    from tasks.sheets import take_in_sheet
    from tasks.sync import sync_campaign, sync_hierarchy
    from tasks.trainings import training_intake

    use_small_hierarchy(Path(env["config_dir"]))
    cfg = load_config()
    uploads = Path(env["home"]) / "uploads"
    uploads.mkdir(parents=True)
    july = moment(dt.date(2022, 7, 1), cfg.campaign)
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    qianan = [
        application(1),
        application(2, **{"带动创业人数": "25", "吸纳就业人数": "30", "其中脱贫人口就业人数": "12"}),
    ]
    take_in_workbook(cfg, write_xlsx(uploads / "乾安县-培育库申报表.xlsx", qianan), july)
    take_in_workbook(cfg, write_xlsx(uploads / "农安县-培育库申报表.xlsx", [_nongan(5)]), july)
    with session_scope() as session:
        apps = {a.project_name: a for a in session.exec(select(PoolApplication)).all()}
        # Named in October (the review's own tests cover how): two in 乾安县, one in 农安县.
        for unit, name in ((QIANAN, "肉牛养殖项目1"), (QIANAN, "肉牛养殖项目2"), (NONGAN, "农安蔬菜项目5")):
            session.add(
                NamedBase(
                    year=2022,
                    unit_key=unit,
                    level="county",
                    application_id=apps[name].id,  # type: ignore[arg-type]
                    expert_score=85,
                    priority=7,
                    total=92,
                    rank=1,
                    status="named",
                    tier="一档",
                    ranked_at=july,
                )
            )
    sync_campaign(cfg, ["entrepreneur_training", "agri_tech_training", "typical_bases", "experience_article"])
    autumn = moment(dt.date(2022, 11, 1), cfg.campaign)
    trainings = [
        training(
            "乾安县", "创业者培训", "2022-09-10", "电商运营", 关联项目="肉牛养殖项目1"
        ),  # 三送 reaches 1
        training("松原市", "农技人员培训", "2022-08-01", "肉牛防疫"),
        training("松原市", "农技人员培训", "2022-10-01", "青贮饲料"),
    ]
    take_in_sheet(
        cfg,
        training_intake(cfg),
        write_sheet(uploads / "松原市-培训记录表.xlsx", TRAINING_HEADERS, trainings),
        autumn,
    )
    ledger = [
        fund(
            "松原市",
            "吉人社2022-1",
            "基地建设补助",
            **{
                "下达金额（万元）": "100",
                "下达日期": "2022-07-01",
                "到位金额（万元）": "100",
                "到位日期": "2022-07-20",
            },
            **{"支出金额（万元）": "80", "支出日期": "2022-10-20"},
        ),
        fund(
            "乾安县",
            "吉人社2022-9",
            "创业培训",
            **{"资金来源": "因素法下达资金", "下达金额（万元）": "50", "下达日期": "2022-07-01"},
            **{
                "到位金额（万元）": "50",
                "到位日期": "2022-07-15",
                "支出金额（万元）": "50",
                "支出日期": "2022-09-01",
            },
        ),
        fund(  # the city's own money: not 专项资金, not in the rates (三(五) 三个确保)
            "松原市",
            "松财2022-3",
            "基地建设补助",
            **{"资金来源": "市级资金", "下达金额（万元）": "40", "下达日期": "2022-07-01"},
        ),
    ]
    take_in_sheet(
        cfg, fund_intake(cfg), write_sheet(uploads / "松原市-资金台账.xlsx", FUND_HEADERS, ledger), autumn
    )
    update_progress.fn(cfg, dt.date(2022, 11, 1), ["trainings"])

    inbox = Path(env["home"]) / "inbox"
    for folder in ("income_report", "publicity"):
        (inbox / folder).mkdir(parents=True, exist_ok=True)
    write_sheet(
        inbox / "income_report" / "乾安县-增收情况表.xlsx",
        INCOME_HEADERS,
        [
            {
                "项目名称": "肉牛养殖项目1",
                "统一社会信用代码": credit_code(1),
                "上年度员工人均年收入（元）": "30000",
                "本年度员工人均年收入（元）": "33000",
            },
            {
                "项目名称": "肉牛养殖项目2",
                "统一社会信用代码": credit_code(2),
                "上年度员工人均年收入（元）": "30000",
                "本年度员工人均年收入（元）": "36000",
            },
        ],
    )
    write_sheet(
        inbox / "income_report" / "农安县-增收情况表.xlsx",
        INCOME_HEADERS,
        [
            {
                "项目名称": "农安蔬菜项目5",
                "统一社会信用代码": credit_code(5, NONGAN),
                "上年度员工人均年收入（元）": "30000",
                "本年度员工人均年收入（元）": "31500",
            }
        ],
    )
    write_sheet(
        inbox / "publicity" / "松原市-宣传报道记录表.xlsx",
        PUBLICITY_HEADERS,
        [
            {
                "类别": "优秀典型",
                "标题": "乾安肉牛带富一方",
                "项目名称": "肉牛养殖项目1",
                "统一社会信用代码": credit_code(1),
                "发布媒体": "吉林日报",
                "发布日期": "2022-11-02",
            },
            {
                "类别": "优秀典型",
                "标题": "返乡青年的牧场",
                "项目名称": "肉牛养殖项目2",
                "统一社会信用代码": credit_code(2),
            },
            {"类别": "经验材料", "标题": "松原市抓基地建设的做法", "发布媒体": "中国劳动保障报"},
            {
                "类别": "优秀典型",
                "标题": "不在库的项目",
                "项目名称": "不存在",
                "统一社会信用代码": credit_code(99),
            },
        ],
    )
    return env


def test_publicity_counts_typical_bases_and_articles_for_the_city(year: dict[str, Any]) -> None:
    from flows.publicity import publicity
    from models.db import session_scope
    from models.tables import ObligationInstance

    result = publicity(today=dt.date(2022, 12, 1))
    summary = result["intake"]["publicity"][0]
    assert (summary["new"], summary["rejected"]) == (3, 1)
    assert "培育库中没有该项目" in summary["errors"][0]["reason"]
    with session_scope() as session:
        owed = {
            (i.obligation_key, i.unit_key): (i.status, i.done_count)
            for i in session.exec(select(ObligationInstance)).all()
            if i.obligation_key in ("typical_bases", "experience_article")
        }
    assert owed[("typical_bases", SONGYUAN)] == ("submitted", 2)
    assert owed[("experience_article", SONGYUAN)] == ("submitted", 1)
    assert owed[("typical_bases", CHANGCHUN)] == ("open", 0)


def test_exchange_meeting_picks_and_tells_presenters_once(year: dict[str, Any]) -> None:
    from flows.publicity import MeetingPlan, exchange_meeting
    from models.db import session_scope
    from models.tables import ObligationInstance

    plan = MeetingPlan(
        meeting_on=dt.date(2022, 11, 25), place="长春市", presenters=["松原市", "220122", "不存在县"]
    )
    result = exchange_meeting(meeting=plan, operator="省就业服务局 李四", today=dt.date(2022, 11, 10))
    assert (result["picked"], result["told"], result["unknown"]) == (2, 2, ["不存在县"])
    told = sorted(m.unit_key for m in outbox() if m.kind == "exchange")
    assert told == [NONGAN, SONGYUAN]
    assert "2022年11月25日" in next(m for m in outbox() if m.kind == "exchange").body
    again = exchange_meeting(meeting=plan, operator="省就业服务局 李四", today=dt.date(2022, 11, 10))
    assert (again["picked"], again["told"]) == (0, 0)
    with session_scope() as session:
        meeting = session.exec(
            select(ObligationInstance).where(ObligationInstance.obligation_key == "exchange_meeting")
        ).one()
    assert (meeting.unit_key, meeting.status) == (PROVINCE, "submitted")


def test_assessment_figures_match_a_hand_computation_and_the_workbook(year: dict[str, Any]) -> None:
    from flows.assessment import annual_assessment
    from flows.publicity import publicity

    publicity(today=dt.date(2022, 12, 1))
    draft = annual_assessment(today=dt.date(2022, 12, 20))
    assert (
        draft["progress"]["assessment"]["final"] is False
        and draft["progress"]["assessment"]["scorecards"] == 0
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = annual_assessment(today=YEAR_END)
    assert not [w for w in caught if "missing from font" in str(w.message)]  # Chinese labels have glyphs
    published = result["progress"]["assessment"]
    assert published["final"] is True and published["scorecards"] == 3

    # By hand. Plan: 松原市 3, 长春市 2, 梅河口市 1.
    songyuan_bases, changchun_bases = 2, 1
    startups_jobs = {SONGYUAN: (40 + 60) + (25 + 30), CHANGCHUN: 40 + 60}
    poverty = {SONGYUAN: 8 + 12, CHANGCHUN: 8}
    growth = {SONGYUAN: (33000 + 36000 - 60000) / 60000, CHANGCHUN: (31500 - 30000) / 30000}
    # 专项资金 only (省级专项资金 100 + 因素法下达资金 50; 松原市's 市级资金 40 left out): arrival 150/150,
    # execution (80 + 50)/150; 长春市 none
    funds_rate = (150 / 150 + 130 / 150) / 2
    # Duties: entrepreneur H2 per unit, agri-tech per city (the counties' is 原则上, not scored), 乾安县's
    # and 松原市's met. 三送 coverage (三(四) "涵盖本级全部入库项目"): 乾安县's pool of 2 has project 1
    # served by its training; 农安县's 1 none. Equal weight.
    services = {
        SONGYUAN: (2 / 4 + 1 / 2) / 2,
        CHANGCHUN: (0 / 3 + 0 / 1) / 2,
    }
    expected = {
        SONGYUAN: {
            "数量指标": 25 * songyuan_bases / 3,
            "质量指标": 20 * 1.0,
            "社会效益指标": 15 * 1.0,
            "经济效益指标": 10 * 1.0,
            "资金到位和执行": 15 * funds_rate,
            "服务基地": 10 * services[SONGYUAN],
            "宣传报道": 5 * 2 / 2,
        },
        CHANGCHUN: {
            "数量指标": 25 * changchun_bases / 2,
            "质量指标": 20 * startups_jobs[CHANGCHUN] / startups_jobs[SONGYUAN],
            "社会效益指标": 15 * poverty[CHANGCHUN] / poverty[SONGYUAN],
            "经济效益指标": 10 * growth[CHANGCHUN] / growth[SONGYUAN],
            "资金到位和执行": 0.0,
            "服务基地": 0.0,
            "宣传报道": 0.0,
        },
    }

    book = load_workbook(published["workbook"])
    assert book.sheetnames == [
        "汇总",
        "分级完成情况",
        "数量指标",
        "质量指标",
        "社会效益指标",
        "经济效益指标",
        "资金到位和执行",
        "服务基地",
        "宣传报道",
    ]
    summary = book["汇总"]
    assert summary["A1"].value.startswith("2022年度返乡入乡创业基地建设目标责任考核：汇总")
    headers = [c.value for c in summary[3]]
    assert headers[:2] == ["排名", "市州"] and headers[-1] == "总分"
    rows = {r[1]: dict(zip(headers, r, strict=True)) for r in summary.iter_rows(min_row=4, values_only=True)}
    for key, name in ((SONGYUAN, "松原市"), (CHANGCHUN, "长春市")):
        for title, value in expected[key].items():
            assert rows[name][f"{title}得分"] == pytest.approx(round(value, 2), abs=0.005), (name, title)
        assert rows[name]["总分"] == pytest.approx(sum(round(v, 2) for v in expected[key].values()), abs=0.02)
    assert [rows[n]["排名"] for n in ("松原市", "长春市", "梅河口市")] == [1, 2, 3]
    assert summary.freeze_panes == "B4" and summary["C3"].font.bold

    songyuan_q = city_row(book, "数量指标", "松原市")
    assert (songyuan_q["年度建设计划"], songyuan_q["命名基地数"]) == (3, 2)
    assert songyuan_q["其中就业帮扶车间"] == 0  # 一: counted with the bases; none of 松原市's two is one
    assert (songyuan_q["命名基地数：市本级"], songyuan_q["命名基地数：所属县（市、区）"]) == (0, 2)
    # 一 省、市、县三级 against the plan (this fixture's 示意 split: city 2, county 4): three county bases
    levels = [r for r in book["分级完成情况"].iter_rows(min_row=4, values_only=True)]
    assert levels == [("省级", 0, 0, "—"), ("市级", 2, 0, "0.0%"), ("县级", 4, 3, "75.0%")]
    songyuan_s = city_row(book, "服务基地", "松原市")
    assert (songyuan_s["入库项目"], songyuan_s["已服务入库项目"]) == (2, 1)
    assert songyuan_s["完成情况"] == "事项 2 / 4，三送覆盖 1 / 2"
    songyuan_f = city_row(book, "资金到位和执行", "松原市")
    assert songyuan_f["其中因素法下达（万元）"] == 50 and songyuan_f["专项资金下达（万元）"] == 150
    assert songyuan_f["完成情况"] == "到位率 100.0%，执行率 86.7%"
    headers = [c.value for c in book["资金到位和执行"][3]]
    assert book["资金到位和执行"].cell(row=4, column=headers.index("完成率") + 1).number_format == "0.0%"

    folder = Path(published["workbook"]).parent
    for chart in ("scores.png", "plan-vs-named.png"):
        assert (folder / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    cards = [m for m in outbox() if m.kind == "scorecard"]
    assert sorted(m.unit_key for m in cards) == sorted([SONGYUAN, CHANGCHUN, MEIHEKOU])
    songyuan_card = next(m for m in cards if m.unit_key == SONGYUAN)
    assert "第 1 名" in songyuan_card.subject and songyuan_card.attachment
    card = load_workbook(songyuan_card.attachment)
    assert [r[1] for r in card["汇总"].iter_rows(min_row=4, values_only=True)] == [
        "松原市"
    ]  # only its own rows

    # The same figures again send nothing; the province's assessment obligation is met.
    assert annual_assessment(today=YEAR_END)["progress"]["assessment"]["scorecards"] == 0
    assert len([m for m in outbox() if m.kind == "scorecard"]) == 3
    from models.db import session_scope
    from models.tables import ObligationInstance

    with session_scope() as session:
        done = session.exec(
            select(ObligationInstance).where(ObligationInstance.obligation_key == "annual_assessment")
        ).one()
    assert (done.unit_key, done.status) == (PROVINCE, "submitted")


def test_3_4_a_county_without_agri_tech_training_keeps_its_service_points(year: dict[str, Any]) -> None:
    """三(四) "对同类创业项目每年组织农技工培训，市级不少于2次，县级原则上不少于1次": the county's is a
    principle to remind about, not a minimum. 乾安县 and 长岭县 held no agri-tech training all year and
    lose nothing in 服务基地; 长春市 held none of its 2 and does. 松原市's duties: the 创业者培训 of
    2022-H2 of 松原市, 乾安县 and 长岭县, and 松原市's own 农技培训 = 4; met: 乾安县's 创业者培训 and
    松原市's two 农技培训 = 2. 长春市's: its own 创业者培训 and 农技培训, 农安县's 创业者培训 = 3, none met."""
    from flows.assessment import annual_assessment

    published = annual_assessment(today=YEAR_END)["progress"]["assessment"]
    book = load_workbook(published["workbook"])
    songyuan = city_row(book, "服务基地", "松原市")
    assert (songyuan["应完成服务事项"], songyuan["已完成服务事项"]) == (4, 2)
    assert (songyuan["应完成服务事项：所属县（市、区）"], songyuan["已完成服务事项：所属县（市、区）"]) == (
        2,
        1,
    )
    changchun = city_row(book, "服务基地", "长春市")
    assert (changchun["应完成服务事项"], changchun["已完成服务事项"]) == (3, 0)
    assert changchun["应完成服务事项：市本级"] == 2  # the city's 农技培训 is a minimum: owed and unmet


def test_a_draft_with_nothing_due_scores_nothing_and_says_so() -> None:
    """No data at all (a draft early in the year): services and publicity are "not yet due" and score 0,
    so no city gets the 10 + 5 points of duties it has not had to do yet. In the final assessment a city
    that owed nothing keeps those 15 points. Weights from the 2022 file: 服务基地 10, 宣传报道 5."""
    from config import load_config
    from models.assessment import city_totals, score

    rules = load_config().campaign.assessment
    assert rules is not None
    figures = pd.DataFrame(
        {"unit_key": [SONGYUAN, CHANGCHUN], "city_key": [SONGYUAN, CHANGCHUN], "is_city": [True, True]}
    )
    totals = city_totals(figures, {SONGYUAN: 3, CHANGCHUN: 2})
    draft = score(totals, rules, final=False)
    assert draft["total"].tolist() == [0.0, 0.0]
    assert draft["services_shown"].tolist() == ["未到期（不计分）"] * 2
    assert draft["publicity_shown"].tolist() == ["未到期（不计分）"] * 2
    final = score(totals, rules, final=True)
    assert final["total"].tolist() == [15.0, 15.0]


def test_2_a_base_named_at_several_levels_counts_once_at_the_highest() -> None:
    """一 "省、市、县三级…基地120个" counts bases, not namings: project 1, named by 乾安县, then 松原市, then
    the province, is one provincial base, counted for 松原市 (where it lies); project 2, named by 乾安县
    only, is 乾安县's; project 3, named by 长春市, is 长春市's."""
    from config.schema import Level
    from models.assessment import bases_counted, level_plan

    named = pd.DataFrame(
        {
            "unit_key": [QIANAN, SONGYUAN, PROVINCE, QIANAN, CHANGCHUN],
            "level": ["county", "city", "province", "county", "city"],
            "application_id": [1, 1, 1, 2, 3],
            "region_key": [QIANAN, QIANAN, QIANAN, QIANAN, NONGAN],
        }
    )
    kept = bases_counted(named, {QIANAN: SONGYUAN, NONGAN: CHANGCHUN, SONGYUAN: SONGYUAN})
    got = sorted(
        zip(kept["application_id"], kept["level"], kept["counts_for"], kept["provincial"], strict=True)
    )
    assert got == [
        (1, "province", SONGYUAN, True),
        (2, "county", QIANAN, False),
        (3, "city", CHANGCHUN, False),
    ]
    plan = level_plan(kept, {Level.province: 2, Level.city: 4, Level.county: 0})
    assert plan.to_dict("records") == [
        {"级别": "省级", "计划": 2, "已命名": 1, "完成率": "50.0%"},
        {"级别": "市级", "计划": 4, "已命名": 1, "完成率": "25.0%"},
        {"级别": "县级", "计划": 0, "已命名": 1, "完成率": "—"},
    ]
