"""One run at a time per flow and year (tasks/run_lease.py): claimed in the database, given back for a
pause, and run out when its holder died. On both databases: the claim is one dialect-specific upsert."""

from __future__ import annotations

import threading
import time

import pytest

from tasks import run_lease
from tasks.run_lease import give_back, holder_of, one_at_a_time, released_while, renew, try_claim

pytestmark = pytest.mark.also_postgres


def test_a_lease_has_one_holder_until_given_back_or_run_out(env: dict[str, object]) -> None:
    t = time.time()
    assert try_claim("june_survey:2022", "run-a", now=t)
    assert not try_claim("june_survey:2022", "run-b", now=t + 1)
    assert try_claim("june_survey:2022", "run-a", now=t + 2)  # its holder may claim it again
    assert try_claim("pool_intake:2022", "run-b", now=t + 2)  # another flow is another lease
    assert not renew("june_survey:2022", "run-b") and renew("june_survey:2022", "run-a")
    give_back("june_survey:2022", "run-b")  # not theirs: nothing happens
    assert holder_of("june_survey:2022") == "run-a"
    give_back("june_survey:2022", "run-a")
    assert holder_of("june_survey:2022") is None
    assert try_claim("june_survey:2022", "run-b")
    # a holder that died stops renewing: 60 s later the lease is free for anyone
    assert not try_claim("june_survey:2022", "run-c", now=time.time() + 59)
    assert try_claim("june_survey:2022", "run-c", now=time.time() + 61)


def test_a_second_run_waits_for_the_working_one_and_not_for_a_paused_one(
    env: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_lease, "POLL_SECONDS", 0.05)
    events: list[str] = []
    first_working, first_paused, first_resume, second_done = (threading.Event() for _ in range(4))

    def first() -> None:
        with one_at_a_time("october_review:2022", "run-1", "等待"):
            events.append("1 works")
            first_working.set()
            time.sleep(0.5)
            with released_while():  # the pause for the operator's decision
                events.append("1 paused")
                first_paused.set()
                first_resume.wait(10)
            events.append("1 works again")

    def second() -> None:
        first_working.wait(10)
        with one_at_a_time("october_review:2022", "run-2", "等待"):
            events.append("2 works")
            time.sleep(0.3)
            first_resume.set()  # the operator answers while the second run still works
            time.sleep(0.3)
            events.append("2 done")
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    # The second run waited while the first worked, worked while the first was paused, and the first
    # went on only once the second had finished.
    assert events == ["1 works", "1 paused", "2 works", "2 done", "1 works again"]
    assert holder_of("october_review:2022") is None
