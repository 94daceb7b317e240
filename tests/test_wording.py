"""The shipped text quotes 吉人社发〔2022〕17号 as it words it. The notice's text is
tests/data/jilin-2022-base-campaign-notice.zh.txt (public, copied from the published notice)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTICE = (Path(__file__).parent / "data" / "jilin-2022-base-campaign-notice.zh.txt").read_text(
    encoding="utf-8"
)
SHIPPED = ("config", "models", "tasks", "flows", "portal", "docs")
SUFFIXES = {".py", ".yaml", ".yml", ".j2", ".html", ".js", ".css", ".md", ".txt"}

# misquote -> the notice's words (and where they are)
MISQUOTES = {
    "至少走访": "每季度走访一次",  # 三(四) "推荐上级培育项目由本级主要领导包保，每季度走访一次"
    "每季度至少": "每季度走访一次",
    "吸纳脱贫人口就业较多": "带动脱贫人口创业就业较多",  # 三(二)
    "脱贫人口较多": "带动脱贫人口创业就业较多",
    "重点帮扶县": "省级乡村振兴重点扶持县",  # 三(二)
}


def _shipped_files() -> list[Path]:
    files = [REPO / "README.md"]
    for folder in SHIPPED:
        files += [p for p in sorted((REPO / folder).rglob("*")) if p.is_file() and p.suffix in SUFFIXES]
    return files


def test_3_2_3_4_shipped_text_quotes_the_notice_as_it_words_it() -> None:
    """三(四) "每季度走访一次" (not 至少), 三(二) "带动脱贫人口创业就业较多" (not 三(三)'s, not 吸纳) and
    "省级乡村振兴重点扶持县" (not 重点帮扶县): in config, templates, models, tasks, flows, the portal and
    the README."""
    for words in set(MISQUOTES.values()):
        assert words in NOTICE, words
    found = [
        f"{path.relative_to(REPO)}:{n}: {wrong!r}, the notice says {right!r}"
        for path in _shipped_files()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for wrong, right in MISQUOTES.items()
        if wrong in line
    ]
    assert found == []


def test_the_illustrative_values_quote_the_notice_word_for_word() -> None:
    """What `campaign check` shows operators as "通知说…/通知要求…" is the notice's text (spaces aside)."""
    import re

    from config import load_config

    notice = re.sub(r"\s+", "", NOTICE)
    quoted = [
        (item.path, phrase)
        for item in load_config(2022).campaign.illustrative_values
        for phrase in re.findall(r"[\"“]([^\"”]+)[\"”]", item.why)
    ]
    assert quoted, "the 2022 file quotes the notice"
    assert [(path, p) for path, p in quoted if re.sub(r"\s+", "", p) not in notice] == []
