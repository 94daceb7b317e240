"""Bring the hierarchy and the year's obligation instances from config into the database."""

from __future__ import annotations

import sqlalchemy as sa
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from config import CampaignConfig, Level
from models.db import session_scope, upsert
from models.deadlines import periods
from models.planning import owes
from models.tables import Channel, Contact, ObligationInstance, Unit
from tasks.unit_of_work import task

INSTANCE_KEY = ["year", "obligation_key", "unit_key", "period", "subject"]
_LEVEL_ORDER = {Level.province: 0, Level.city: 1, Level.county: 2}


def channel_rows(cfg: CampaignConfig) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    for unit in cfg.units:
        for ch in unit.channels:
            if ch.kind == "email":
                address, sign = ch.to, None
            elif ch.kind in ("dingtalk", "wecom", "feishu"):
                address, sign = ch.token, ch.sign
            elif ch.kind == "apprise":
                address, sign = ch.url, None
            else:
                address, sign = "mailbox", None
            rows.append({"unit_key": unit.key, "kind": ch.kind, "address": address, "sign_secret": sign})
    return rows


def sync_hierarchy(session: Session, cfg: CampaignConfig) -> int:
    units = sorted(cfg.units, key=lambda u: _LEVEL_ORDER[u.level])  # parents before children
    upsert(
        session,
        Unit,
        [
            {
                "key": u.key,
                "name": u.name,
                "bureau": u.bureau,
                "level": u.level.value,
                "reports_to": u.reports_to,
            }
            for u in units
        ],
        unique=["key"],
        update=["name", "bureau", "level", "reports_to"],
    )
    # Contacts and channels are replaced by what the config says now.
    keys = [u.key for u in units]
    session.execute(sa.delete(Contact).where(Contact.unit_key.in_(keys)))  # type: ignore[attr-defined]
    session.execute(sa.delete(Channel).where(Channel.unit_key.in_(keys)))  # type: ignore[attr-defined]
    contacts = [
        {"unit_key": u.key, "name": c.name, "role": c.role, "email": c.email, "phone": c.phone}
        for u in units
        for c in u.contacts
    ]
    if contacts:
        session.execute(sa.insert(Contact), contacts)
    channels = channel_rows(cfg)
    if channels:
        session.execute(sa.insert(Channel), channels)
    return len(units)


def sync_obligations(session: Session, cfg: CampaignConfig, obligation_keys: list[str] | None = None) -> int:
    """Create each unit's instance of each obligation and period (kept if it exists; dates follow config)."""
    campaign = cfg.campaign
    rows = []
    for ob in campaign.obligations:
        if obligation_keys is not None and ob.key not in obligation_keys:
            continue
        if ob.subject != "unit":
            continue  # owed per recommended project: tasks/visits.py instantiates them
        for period in periods(campaign, ob):
            for unit in cfg.units:
                if owes(ob, unit):
                    rows.append(
                        {
                            "year": campaign.year,
                            "obligation_key": ob.key,
                            "unit_key": unit.key,
                            "period": period.label,
                            "kickoff_on": period.kickoff,
                            "due_on": period.due,
                            "status": "open",
                            "required_count": ob.count_for(unit.level),
                            "subject": "",
                        }
                    )
    upsert(
        session,
        ObligationInstance,
        rows,
        unique=INSTANCE_KEY,
        update=["kickoff_on", "due_on", "required_count"],
    )
    return len(rows)


@task(
    name="sync-campaign",
    description="同步单位与任务",
    retries=2,
    retry_delay_seconds=5,
    cache_policy=NO_CACHE,
)
def sync_campaign(cfg: CampaignConfig, obligation_keys: list[str] | None = None) -> dict[str, int]:
    """Units, contacts, channels and obligation instances, in one transaction."""
    with session_scope() as session:
        n_units = sync_hierarchy(session, cfg)
        n_instances = sync_obligations(session, cfg, obligation_keys)
    return {"units": n_units, "obligation_instances": n_instances}
