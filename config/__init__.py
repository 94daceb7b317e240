"""Settings and campaign data. `load_regions()` and `load_campaign()` read and check the YAML files."""

from __future__ import annotations

from config.loader import CampaignConfig, available_years, load_campaign, load_config, load_regions
from config.schema import Campaign, Level, Obligation, Regions, Unit
from config.settings import Settings, get_settings

__all__ = [
    "Campaign",
    "CampaignConfig",
    "Level",
    "Obligation",
    "Regions",
    "Settings",
    "Unit",
    "available_years",
    "get_settings",
    "load_campaign",
    "load_config",
    "load_regions",
]
