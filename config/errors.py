"""The project's one family of errors.

    CampaignError
    ├── ConfigError       a campaign or regions file is wrong: names the file and the field path
    ├── SubmissionError   a submitted file cannot be accepted: names the file and why
    ├── DeliveryError     a channel refused or failed a message: the reason, with secrets redacted
    └── RunRefused        a dated run asked to act on a day outside its campaign: nothing was done

Each carries its context as fields, so callers (artifacts, notifications, the CLI's --json) can show
the parts separately instead of parsing text.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class CampaignError(Exception):
    """Base of every error this project raises on purpose."""


@dataclass
class ConfigProblem:
    path: str  # e.g. "obligations[2].schedule.due"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass
class ConfigError(CampaignError):
    file: str
    problems: list[ConfigProblem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"{self.file}: {p}" for p in self.problems]
        return "配置文件有误 / invalid config:\n  " + "\n  ".join(lines)


@dataclass
class SubmissionError(CampaignError):
    file: str
    reason: str
    unit_key: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass
class DeliveryError(CampaignError):
    """A send that failed. `retryable`: a later try may succeed. `unknown`: the message may have
    arrived all the same (the line was cut after its content went out), so it is not sent again at
    once (tasks/deliverer.py)."""

    channel: str
    reason: str
    retryable: bool = True
    unknown: bool = False

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.channel}: {self.reason}"


@dataclass
class RunRefused(CampaignError):
    """A run refused before it wrote or sent anything; `reason` is the operator's Chinese message."""

    flow: str
    reason: str

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.flow}：{self.reason}"
