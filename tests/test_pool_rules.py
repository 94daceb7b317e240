"""The incubation pool's rules as plain functions over frames: admission per level with each unit's own
bar, the fallback to a lower pool, tilts and priority, routing upward, and the template. No Prefect."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dateutil.rrule import rrulestr
from openpyxl import load_workbook
from stdnum.exceptions import InvalidChecksum

from config import load_config
from models.applications import COLUMNS, check_applications
from models.pool import Hierarchy, derive, proposals, tilt_labels
from models.sheets import CheckContext, validate_ric
from models.workbook import ROW
from tests.pool_data import HEADERS, application, credit_code, id_number

ON = dt.date(2022, 7, 5)


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    return load_config(2022)


def checked(cfg, rows: list[dict[str, object]], sender: str = "220000") -> pd.DataFrame:  # type: ignore[no-untyped-def]
    hierarchy = Hierarchy.of(cfg.units)
    by_header = {c.header: c.field for c in COLUMNS}
    frame = pd.DataFrame([{by_header[k]: str(v) for k, v in r.items()} for r in rows])
    frame[ROW] = range(2, 2 + len(frame))
    ctx = CheckContext(hierarchy.region_index(), hierarchy.jurisdiction(sender), "吉林省", ON)
    result = check_applications(frame, ctx)
    assert result.errors.empty, result.errors.to_dict("records")
    return derive(result.good, cfg.campaign.pool, hierarchy, ON)


def test_admission_uses_the_units_own_bar_and_falls_back_to_a_lower_pool(cfg) -> None:  # type: ignore[no-untyped-def]
    apps = checked(
        cfg,
        [
            # 乾安县 filed its own bar (min_jobs 0): admitted with no jobs; 长岭县 uses the county default (10).
            application(1, **{"吸纳就业人数": "0", "其中脱贫人口就业人数": "0"}),
            application(
                2, **{"吸纳就业人数": "0", "其中脱贫人口就业人数": "0", "所在县（市、区）": "长岭县"}
            ),
            # declared 市级, meets only the county bar: admitted to the county pool, and told why
            application(3, **{"带动创业人数": "15", "申报层级": "市级", "所在县（市、区）": "长岭县"}),
            # declared 省级 and meets it: the provincial pool takes only recommendations (逐级推荐), so 松原市's
            application(4, **{"申报层级": "省级"}),
            # 梅河口市 acts at city level: a 县级 application there goes to its own (city-level) pool
            application(5, **{"所在县（市、区）": "梅河口市"}),
            # too young for any pool: refused, with the reason
            application(6, **{"成立日期": "2022-03-01", "所在县（市、区）": "长岭县"}),
        ],
    )
    got = apps.set_index("project_name")[["level", "pool_unit", "admitted", "admission_note"]]
    assert got.loc["肉牛养殖项目1"].tolist() == ["county", "220723", True, ""]
    assert got.loc["肉牛养殖项目2", "admitted"] == False  # noqa: E712
    assert "吸纳就业0人，长岭县标准10人" in got.loc["肉牛养殖项目2", "admission_note"]
    assert got.loc["肉牛养殖项目3"].tolist()[:3] == ["county", "220722", True]
    assert got.loc["肉牛养殖项目3", "admission_note"].startswith(
        "未达市级入库条件（带动创业15人，松原市标准20人），按县级入库"
    )
    assert got.loc["肉牛养殖项目4"].tolist()[:3] == ["city", "220700", True]
    assert got.loc["肉牛养殖项目5"].tolist()[:3] == ["city", "220581", True]
    assert got.loc["肉牛养殖项目6", "admitted"] == False  # noqa: E712
    assert "经营年限0.3年，长岭县标准1年" in got.loc["肉牛养殖项目6", "admission_note"]


def test_tilts_and_priority_follow_the_configured_weights(cfg) -> None:  # type: ignore[no-untyped-def]
    weights = cfg.campaign.pool.weights
    apps = checked(
        cfg,
        [
            application(
                1, **{"是否肉牛养殖": "否", "特色类型": "无", "三个助力方向": "", "其中脱贫人口就业人数": "0"}
            ),
            application(
                2,
                **{
                    "所在县（市、区）": "通榆县",  # a key county in the 2022 config
                    "是否边境村": "是",
                    "是否获疫情防控或保耕复产表彰": "是",
                    "三个助力方向": "区域品牌特色,乡村振兴",
                },
            ),
        ],
    ).set_index("project_name")
    assert apps.loc["肉牛养殖项目1", "priority"] == 0
    plain = apps.loc["肉牛养殖项目2"]
    assert (
        plain["key_county"]
        and plain["poverty_employment"]
        and plain["directions"] == "乡村振兴、区域品牌特色"
    )
    expected = sum(
        weights[t]
        for t in weights
        if t.value
        in ("key_county", "border_village", "commendation", "beef_cattle", "speciality", "poverty_employment")
    )
    assert plain["priority"] == pytest.approx(expected + 2 * cfg.campaign.pool.direction_weight)


def test_3_5_the_three_priorities_weigh_in(cfg) -> None:  # type: ignore[no-untyped-def]
    """三(五) "三个优先": the 三个助力 directions (1 each), a growth-stage project (成长期、上升期、有潜力)
    and a demonstrative agricultural one. The 2022 weights (示意) give the last two 1 point each."""
    bare = {"是否肉牛养殖": "否", "特色类型": "无", "三个助力方向": "", "其中脱贫人口就业人数": "0"}
    apps = checked(
        cfg,
        [
            application(1, **bare),
            application(2, **bare, **{"发展阶段": "上升期", "是否示范性、代表性农业或涉农项目": "是"}),
            application(3, **(bare | {"发展阶段": "有潜力", "三个助力方向": "乡村振兴"})),
        ],
    ).set_index("project_name")
    assert apps["priority"].to_dict() == {"肉牛养殖项目1": 0.0, "肉牛养殖项目2": 2.0, "肉牛养殖项目3": 2.0}
    assert tilt_labels(apps.loc["肉牛养殖项目2"]) == "示范性、代表性农业或涉农项目、上升期"


def test_recommendation_goes_one_level_up_by_reports_to(cfg) -> None:  # type: ignore[no-untyped-def]
    hierarchy = Hierarchy.of(cfg.units)
    apps = checked(
        cfg,
        [
            application(1),  # 乾安县 → 松原市
            application(2, **{"所在县（市、区）": "梅河口市"}),  # → the province, not 通化
            application(3, **{"所在县（市、区）": "长白山管委会"}),  # → the province
            application(5, **{"带动创业人数": "12"}),  # county bar only
        ],
    )
    apps["id"] = range(1, len(apps) + 1)
    up = proposals(apps, cfg.campaign.pool, hierarchy, ON).set_index("project_name")
    assert up["to_unit"].to_dict() == {
        "肉牛养殖项目1": "220700",
        "肉牛养殖项目2": "220000",
        "肉牛养殖项目3": "220000",
    }
    assert up["to_level"].to_dict() == {
        "肉牛养殖项目1": "city",
        "肉牛养殖项目2": "province",
        "肉牛养殖项目3": "province",
    }


def test_3_3_no_application_enters_the_provincial_pool_straight(cfg) -> None:  # type: ignore[no-untyped-def]
    """三(三) "广泛收入，逐级推荐", 三(六) "择优命名、逐级推荐": the provincial pool holds only what a city
    named and recommended. 乾安县's project that declares 省级 (and meets every bar) is judged for 松原市's
    pool and says why; 梅河口市's, a city-level unit, for its own."""
    apps = checked(
        cfg,
        [
            application(4, **{"申报层级": "省级"}),
            application(6, **{"申报层级": "省级", "所在县（市、区）": "梅河口市"}),
        ],
    ).set_index("project_name")
    assert apps[["admitted", "level", "pool_unit"]].values.tolist() == [
        [True, "city", "220700"],
        [True, "city", "220581"],
    ]
    assert (
        apps["admission_note"].tolist()
        == ["省级培育库只收经市级评审命名后逐级推荐的项目，按市级培育库审核"] * 2
    )


def test_id_numbers_of_places_missing_from_stdnums_table_are_accepted() -> None:
    from stdnum.cn import ric

    number = id_number(7, "220723")  # 乾安县: not in python-stdnum 2.2's birthplace table
    assert not ric.is_valid(number)
    assert validate_ric(number.lower()) == number
    with pytest.raises(InvalidChecksum):
        validate_ric(number[:-1] + ("0" if number[-1] != "0" else "1"))


def test_pool_intake_runs_on_working_days_only(cfg) -> None:  # type: ignore[no-untyped-def]
    from flows.schedules import working_day_schedule

    rule = rrulestr(working_day_schedule(cfg).rrule, forceset=True)
    days = {d.date() for d in rule}
    assert dt.date(2022, 10, 3) not in days  # 国庆
    assert dt.date(2022, 10, 8) in days  # a make-up Saturday
    assert dt.date(2022, 7, 9) not in days  # an ordinary Saturday
    assert dt.date(2022, 6, 21) in days and max(days) <= dt.date(2022, 12, 31)


def test_template_has_the_headers_drop_downs_and_instructions(cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from models.applications import APPLICATION_SHEET
    from tasks.pool import template_appendix
    from tasks.workbooks import write_template

    path = write_template(tmp_path / "t.xlsx", APPLICATION_SHEET, 2022, template_appendix(cfg.campaign.pool))
    book = load_workbook(path)
    sheet = book["培育库申报表"]
    assert [c.value for c in sheet[1]] == HEADERS
    lists = {str(dv.sqref).split(":")[0]: dv.formula1 for dv in sheet.data_validations.dataValidation}
    column = {c.header: i for i, c in enumerate(COLUMNS, start=1)}
    from openpyxl.utils import get_column_letter

    assert lists[f"{get_column_letter(column['主体类型'])}2"] == '"企业,农民专业合作社,家庭农场,其他"'
    assert lists[f"{get_column_letter(column['申报层级'])}2"] == '"县级,市级,省级"'
    assert lists[f"{get_column_letter(column['是否肉牛养殖'])}2"] == '"是,否"'
    assert sheet.cell(2, column["负责人身份证号"]).number_format == "@"
    notes = [r[0] for r in book["填报说明"].iter_rows(values_only=True) if r and r[0]]
    assert any("更正后重报同一项目" in str(n) for n in notes) and "市级" in notes


def test_whole_column_checks_agree_with_python_stdnum() -> None:
    """The vectorised check characters must say exactly what python-stdnum says, valid or corrupted."""
    import random

    from stdnum.cn import uscc

    from models.sheets import ric_valid, uscc_valid

    rng = random.Random(2022)
    codes, ids = [], []
    for n in range(4000):
        code, number = credit_code(n, rng.choice(["220723", "220102", "222426"])), id_number(n * 7)
        if rng.random() < 0.4:  # one character replaced by any allowed (or forbidden) one
            i = rng.randrange(18)
            code = code[:i] + rng.choice(uscc._alphabet + "IOZSV") + code[i + 1 :]
            j = rng.randrange(18)
            number = number[:j] + rng.choice("0123456789X") + number[j + 1 :]
        if rng.random() < 0.05:
            code, number = code[:17], number + "1"
        codes.append(code)
        ids.append(number)

    def by_stdnum(number: str) -> bool:
        try:
            validate_ric(number)
        except Exception:
            return False
        return True

    codes_s, ids_s = pd.Series(codes), pd.Series(ids)
    assert uscc_valid(codes_s).tolist() == [uscc.is_valid(c) for c in codes]
    assert ric_valid(ids_s).tolist() == [by_stdnum(i) for i in ids]
    assert 0 < sum(uscc.is_valid(c) for c in codes) < len(codes)


def test_phones_and_directions_are_read_as_senders_write_them(cfg) -> None:  # type: ignore[no-untyped-def]
    """Spaces, brackets and +86 around a number are cleaned; a landline needs its area code. Directions
    in any order and separator come back in the template's order and spelling."""
    hierarchy = Hierarchy.of(cfg.units)
    by_header = {c.header: c.field for c in COLUMNS}
    sent = {
        "13912345678": "13912345678",
        "139 1234 5678": "13912345678",
        "+86-13912345678": "13912345678",
        "(0438)1234567": "04381234567",
        "0438-1234567": "0438-1234567",
        "1391234567": None,  # ten digits
        "1234567": None,  # a landline without its area code
    }
    rows = [
        application(
            n,
            **{
                "联系电话": phone,
                "三个助力方向": "区域品牌特色，乡村振兴" if n % 2 else "党委政府重点工作 / 乡村振兴",
            },
        )
        for n, phone in enumerate(sent, start=1)
    ]
    frame = pd.DataFrame([{by_header[k]: str(v) for k, v in r.items()} for r in rows])
    frame[ROW] = range(2, 2 + len(frame))
    ctx = CheckContext(hierarchy.region_index(), hierarchy.jurisdiction("220000"), "吉林省", ON)
    result = check_applications(frame, ctx)
    refused = dict(zip(result.errors[ROW], result.errors["列"], strict=True))
    assert refused == {7: "联系电话", 8: "联系电话"}
    assert result.good["phone"].tolist() == [v for v in sent.values() if v is not None]
    either, other = "乡村振兴、区域品牌特色", "乡村振兴、党委政府重点工作"
    assert result.good["directions"].tolist() == [either, other, either, other, either]
