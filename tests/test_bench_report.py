"""`make bench`'s report, docs/performance.md, from canned results (the bench itself runs for minutes)."""

import copy
from typing import Any

from bench.run import bar_chart, write_performance, write_scale


def _case(label: str, rps: float, ratio: float, **extra) -> dict:
    case = {
        "label": label,
        "rps": rps,
        "ratio": ratio,
        "p50_ms": 4.2,
        "p99_ms": 19.5,
        "errors": 0,
        "non_2xx": 0,
    }
    return {**case, "met": True, **extra}


RESULTS: dict[str, Any] = {
    "date": "2031-04-05 06:07 UTC",
    "machine": {
        "cpus": 2,
        "cpu_model": "Example CPU 9000",
        "platform": "Linux-6.1-x86_64",
        "python": "3.11.9",
        "load_average": 0.12,
    },
    "settings": {
        "articles": 10_000,
        "autocomplete_titles": 100_000,
        "rounds": 3,
        "duration": 5,
        "connections": 32,
    },
    "seconds": 301.4,
    "cases": {
        "ceiling": _case("bare WSGI (ceiling)", 5_900.4, 1.0),
        "healthz": _case("/healthz", 4_720.0, 0.8, target="ratio >= 0.7"),
        "html_list": _case("HTML list page", 350.0, 0.06, errors=2, non_2xx=1, met=False),
    },
    "celery": {
        "roundtrip_count": 300,
        "roundtrip_p50_ms": 2.2,
        "roundtrip_p99_ms": 6.81,
        "tasks": 5_000,
        "tasks_per_s_reliable": 560.4,
        "tasks_per_s_stock": 600.0,
        "reliable_to_stock": 0.934,
        "met": {"round trip p50 < 4 ms": True, "reliable >= 0.85 x stock": True},
    },
}


def test_the_report_is_dated_and_has_the_machine_a_row_per_case_and_the_celery_figures(tmp_path):
    path = tmp_path / "performance.md"

    text = write_performance(RESULTS, path)

    assert path.read_text() == text
    assert "on 2031-04-05 06:07 UTC" in text
    assert "2 usable CPUs (Example CPU 9000)" in text
    assert "load average 0.12" in text
    assert "| bare WSGI (ceiling) | 5,900 | 1.00 | - | 4.20 | 19.50 | 0 |  | yes |" in text
    assert "| /healthz | 4,720 | 0.80 | - | 4.20 | 19.50 | 0 | ratio >= 0.7 | yes |" in text
    # Errors and non-2xx answers are one column; a case that missed says so.
    assert "| HTML list page | 350 | 0.06 | - | 4.20 | 19.50 | 3 |  | NO |" in text
    assert "round trip p50 2.20 ms, p99 6.81 ms (300 in a row)" in text
    assert "5,000 tasks at 560/s with the reliability settings, 600/s" in text
    assert "| reliable >= 0.85 x stock | yes |" in text


def test_a_new_run_shows_the_replaced_runs_ratios_beside_its_own(tmp_path):
    path = tmp_path / "performance.md"
    write_performance(RESULTS, path)
    later = copy.deepcopy(RESULTS)
    later["date"] = "2031-05-01 10:00 UTC"
    later["cases"]["healthz"]["ratio"] = 0.75
    later["cases"]["new_case"] = _case("a case the previous run did not have", 100.0, 0.02)

    text = write_performance(later, path)

    assert "on 2031-05-01 10:00 UTC" in text
    assert "previous ratio (2031-04-05)" in text
    assert "| /healthz | 4,720 | 0.75 | 0.80 |" in text
    assert "| a case the previous run did not have | 100 | 0.02 | - |" in text


def test_the_report_holds_the_project_to_its_references_and_lists_each_middlewares_cost(tmp_path):
    results = copy.deepcopy(RESULTS)
    results["cases"]["hello_plain"] = _case("trivial view, startproject's middleware", 2_000.0, 0.34)
    results["cases"]["hello_house"] = _case(
        "trivial view, the house middleware",
        1_800.0,
        0.3,
        versus="hello_plain",
        versus_ratio=0.9,
        target=">= 0.95 x trivial view, startproject's middleware",
        met=False,
    )
    results["middleware"] = {
        "bare_us": 50.0,
        "full_us": 250.0,
        "middleware_us": {"apps.core.http.middleware.RequestIdMiddleware": 12.34},
    }

    text = write_performance(results, tmp_path / "performance.md")

    assert (
        "- trivial view, the house middleware: 0.90 x trivial view, startproject's middleware "
        "(>= 0.95 x trivial view, startproject's middleware): NOT met" in text
    )
    assert "none 50 µs, all 250 µs" in text
    assert "| `apps.core.http.middleware.RequestIdMiddleware` | 12.3 |" in text


SCALE_RESULTS: dict[str, Any] = {
    "date": "2031-04-06 07:00 UTC",
    "machine": RESULTS["machine"],
    "settings": {"scale_rounds": 3, "duration": 5, "scale_latency_requests": 40},
    "sizes": [
        {"articles": 10_000, "autocomplete_titles": 100_000, "seed_seconds": 1.0, "index_seconds": 9.0},
        {
            "articles": 1_000_000,
            "autocomplete_titles": 1_000_000,
            "seed_seconds": 95.0,
            "index_seconds": 80.0,
        },
    ],
}


def _growth(small_one: float, large_one: float, met: bool | None, label: str = "API list, uncached") -> dict:
    return {
        "label": label,
        "small": {"p50_ms": 300.0, "p99_ms": 900.0, "rps": 400.0, "one_p50_ms": small_one},
        "large": {"p50_ms": 330.0, "p99_ms": 990.0, "rps": 380.0, "one_p50_ms": large_one},
        "p50_ratio": 1.1,
        "rps_ratio": 0.95,
        "one_ratio": large_one / small_one,
        "met": met,
    }


def test_the_scale_section_shows_both_sizes_the_ratio_and_the_seeding_time(tmp_path):
    results = dict(SCALE_RESULTS, growth={"api_list_uncached": _growth(4.0, 4.4, True)})
    path = tmp_path / "performance.md"

    section = write_scale(results, path)

    assert (
        "- 1,000,000 articles: 95 s to COPY the new rows; 1,000,000 autocomplete titles indexed in 80 s."
        in section
    )
    assert "| API list, uncached | 4.00 | 4.40 | 1.10 | 300.00 | 400 | 330.00 | 380 | 1.10 | yes |" in section
    assert path.read_text().startswith("# Performance")


def test_the_bench_and_the_scale_run_each_replace_only_their_own_part_of_the_report(tmp_path):
    path = tmp_path / "performance.md"
    write_performance(RESULTS, path)
    write_scale(dict(SCALE_RESULTS, growth={"admin": _growth(10.0, 20.0, False, "admin")}), path)
    later = copy.deepcopy(RESULTS)
    later["date"] = "2031-05-01 10:00 UTC"

    write_performance(later, path)
    text = path.read_text()

    assert "on 2031-05-01 10:00 UTC" in text
    assert "on 2031-04-05 06:07 UTC" not in text
    assert "| admin | 10.00 | 20.00 | 2.00 | 300.00 | 400 | 330.00 | 380 | 1.10 | NO |" in text
    assert text.count("# Performance") == 1


def test_the_chart_draws_one_bar_per_value_with_its_label_escaped():
    svg = bar_chart(
        "p50 <by> size",
        "ms",
        [
            ("API list", [("10,000", 2.0), ("1,000,000", 2.4)]),
            ("detail & more", [("10,000", 1.0), ("1,000,000", 1.1)]),
        ],
    )
    assert svg.startswith("<svg ")
    assert svg.rstrip().endswith("</svg>")
    assert svg.count('width="12"') == 2  # the legend: one swatch per series
    assert svg.count("<rect") == 4 + 2
    assert "p50 &lt;by&gt; size" in svg
    assert "detail &amp; more" in svg
    assert "2.40 ms" in svg
