"""`make soak`'s verdict, on canned measurements (the soak itself runs for minutes, outside `make test`)."""

import dataclasses

import pytest

from bench.soak import Outcome, Slice, TaskRun, report


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


def _task_run(*, end_kib: float = 93_000.0) -> TaskRun:
    # 50,000 tasks sampled every 5,000; the second half starts at 25,000 with 92,000 KiB.
    samples = [(done, 90_000.0 + min(done, 25_000) * 0.08) for done in range(5_000, 50_000, 5_000)]
    return TaskRun(tasks=50_000, seconds=300, samples=[*samples, (50_000, end_kib)])


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
        task_run=_task_run(),
    )
    return dataclasses.replace(clean, **changes)


def test_a_clean_soak_passes_and_reports_p99_per_slice_and_memory_growth():
    passed, text = report(_outcome())

    assert passed
    assert text.splitlines()[-1] == "soak: PASSED"
    assert "web memory flat: 500.0 -> 540.0 MB (+8.0%, limit +10%)" in text
    # The warm-up half may grow; the second half is held to 512 KiB + 0.05 KiB per task.
    assert "ok   worker main process flat: 50000 tasks in 300 s; 89.8 MB after 25000 tasks" in text
    assert "(+1000 KiB, limit 1762)" in text
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
        ({"task_run": _task_run(end_kib=93_763)}, "FAIL worker main process flat"),
        ({"task_run": None}, "FAIL worker main process flat: no task run"),
        ({"task_run": TaskRun(tasks=50_000, seconds=1, samples=[])}, "FAIL worker main process flat"),
    ],
)
def test_a_soak_fails_on_any_error_or_growth(changes: dict, failure: str):
    passed, text = report(_outcome(**changes))

    assert not passed
    assert failure in text
    assert text.splitlines()[-1] == "soak: FAILED"
