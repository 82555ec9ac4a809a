"""The worker's sweep of cancelled timers (config.celery.drop_cancelled_timers), on kombu's Timer."""

from kombu.asynchronous.timer import Timer

from config.celery import drop_cancelled_timers


def test_the_sweep_drops_cancelled_timers_and_keeps_the_others_due_in_order():
    timer = Timer()
    fired: list[str] = []
    live = [timer.call_at(eta, fired.append, (name,)) for eta, name in ((3.0, "third"), (1.0, "first"))]
    for eta in (0.5, 2.0, 4.0):
        timer.call_at(eta, fired.append, ("cancelled",)).cancel()
    timer.call_at(2.5, fired.append, ("second",))

    drop_cancelled_timers(timer)

    assert len(timer) == 3
    assert [event.eta for event in timer.queue] == [1.0, 2.5, 3.0]
    live[1].cancel()  # an entry kept by the sweep can still be cancelled by its owner
    # Run what is due, as the worker's event loop does (every eta here is long past).
    for _, entry in timer:
        if entry is None:
            break
        timer.apply_entry(entry)
    assert fired == ["second", "third"]


def test_the_sweep_leaves_a_schedule_without_cancelled_timers_alone():
    timer = Timer()
    entry = timer.call_at(1.0, print)

    drop_cancelled_timers(timer)

    assert [event.entry for event in timer.queue] == [entry]
