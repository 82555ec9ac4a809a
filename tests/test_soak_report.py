"""`make soak`'s verdict, on canned measurements (the soak itself runs for minutes, outside `make test`)."""

import dataclasses

import pytest

from bench.soak import Outcome, Slice, report


def _slice(started: float, *, errors: int = 0, web: float = 500.0, worker: float = 300.0) -> Slice:
    return Slice(
        started=started,
        seconds=15,
        requests=1500,
        errors=errors,
        p50_ms=8,
        p99_ms=60,
        memory_mb={"web": web, "worker": worker},
    )


def _outcome(**changes) -> Outcome:
    clean = Outcome(
        capacity_rps=143,
        target_rps=100,
        warmup=[_slice(0), _slice(15)],
        slices=[_slice(30), _slice(45, web=520), _slice(60, web=540, worker=310)],
        baseline_mb={"web": 500.0, "worker": 300.0},
        log_errors={"web": 0, "worker": 0},
        tasks_run=120,
        restarted=[],
        queue_left=0,
        max_growth=0.10,
    )
    return dataclasses.replace(clean, **changes)


def test_a_clean_soak_passes_and_reports_p99_per_slice_and_memory_growth():
    passed, text = report(_outcome())

    assert passed
    assert text.splitlines()[-1] == "soak: PASSED"
    assert "web memory flat: 500.0 -> 540.0 MB (+8.0%, limit +10%)" in text
    # One row per slice, warm-up included and marked.
    rows = [line for line in text.splitlines() if line.rstrip().endswith(("300.0", "310.0", "(warm-up)"))]
    assert len(rows) == 5


@pytest.mark.parametrize(
    ("changes", "failure"),
    [
        ({"slices": [_slice(30), _slice(45, errors=1)]}, "FAIL no failed request: 1 errors"),
        ({"warmup": [_slice(0, errors=2)]}, "FAIL no failed request: 2 errors"),
        ({"slices": [_slice(30, web=551)]}, "FAIL web memory flat"),
        ({"slices": [_slice(30, worker=331)]}, "FAIL worker memory flat"),
        ({"log_errors": {"web": 0, "worker": 3}}, "FAIL no ERROR in the logs"),
        ({"restarted": ["web: 1 of 6"]}, "FAIL no process restarted: web: 1 of 6"),
        ({"queue_left": 7}, "FAIL every task run: 120 run, 7 left in the queue"),
        ({"tasks_run": 0}, "FAIL every task run: 0 run"),
        ({"slices": []}, "FAIL load held"),
    ],
)
def test_a_soak_fails_on_any_error_or_growth(changes: dict, failure: str):
    passed, text = report(_outcome(**changes))

    assert not passed
    assert failure in text
    assert text.splitlines()[-1] == "soak: FAILED"
