"""`linkage bench service` at tiny sizes: it runs end to end and reports what it promises."""

import json

import pytest

pytestmark = pytest.mark.cli


def test_bench_service_reports_ingest_rebuild_and_latency(run_cli, tmp_path):
    out = tmp_path / "service.json"
    result = run_cli(
        "bench",
        "service",
        "--standing",
        "500,900",
        "--batch",
        "200",
        "--ingest-batches",
        "2",
        "--repeats",
        "1",
        "--probes",
        "10",
        "--json",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report == json.loads(out.read_text())
    assert {"ingest", "standing", "blas", "cpu_count", "phase_seconds", "note"} <= set(report)
    assert report["blas"]["libraries"] is not None
    ingest = report["ingest"]
    for mode in ("idle", "busy"):
        assert ingest[mode]["batches"] == 2
        rates = ingest[mode]["records_per_s"]
        assert 0 < rates["min"] <= rates["median"] <= rates["max"]
    assert ingest["without_grpc"]["records_per_s"]["median"] > 0
    assert [e["records"] for e in report["standing"]] == [500, 900]
    for entry in report["standing"]:
        assert entry["build"]["records"] == entry["records"]
        assert entry["build"]["links"] > 0 and entry["build"]["open_alerts"] > 0
        assert entry["rebuild"]["rebuild_seconds"]["median"] > 0
        latency = entry["latency"]
        assert latency["count"] + latency["missed"] == 10 and not latency["stopped_by_budget"]
        assert latency["count"] >= 8
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
        assert latency["receipt"]["p50_ms"] <= latency["p50_ms"]
        assert latency["dice_scan_ms_median"] > 0
    # the larger size starts from a copy of the smaller one's store
    assert report["standing"][1]["build"]["groups"][0]["how"] == "store"


def test_bench_service_refuses_a_bad_size_list(run_cli):
    result = run_cli("bench", "service", "--standing", "lots")
    assert result.exit_code == 2
    assert "comma-separated" in result.output
