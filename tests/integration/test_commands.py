"""The users' commands against a real server: submit, alerts watch / list, audit verify."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from linkage_cli.main import main
from linkage_service.wire.encoded_file import write_encoded

pytestmark = [pytest.mark.integration, pytest.mark.cli]


def _env(pki, name: str) -> dict[str, str]:
    cert, key = pki.files(name)
    return {
        "LINKAGE_CERT": str(cert),
        "LINKAGE_KEY": str(key),
        "LINKAGE_CA": str(pki.directory / "ca.crt"),
    }


def test_submit_watch_list_and_verify(start_server, pki, population_batches, tmp_path):
    server = start_server()
    address = f"localhost:{server.port}"
    runner = CliRunner()
    for agency in ("health", "police"):
        path = tmp_path / f"{agency}.enc"
        write_encoded(path, population_batches[agency])
        result = runner.invoke(
            main, ["submit", "--server", address, str(path), "--json"], env=_env(pki, agency)
        )
        assert result.exit_code == 0, result.output
        receipt = json.loads(result.stdout)
        assert int(receipt["accepted"]) == population_batches[agency].record_count
    again = runner.invoke(
        main, ["submit", "--server", address, str(tmp_path / "police.enc")], env=_env(pki, "police")
    )
    assert again.exit_code == 0 and "already submitted" in again.stderr
    assert server.matcher.wait_idle(60)

    cursor_file = tmp_path / "cursor"
    watch = [
        "alerts",
        "watch",
        "--server",
        address,
        "--json",
        "--timeout",
        "2",
        "--cursor-file",
        str(cursor_file),
    ]
    first = runner.invoke(main, watch, env=_env(pki, "mash-1"))
    assert first.exit_code == 0, first.output
    events = [json.loads(line) for line in first.stdout.splitlines()]
    assert events and {"health", "police"} == set(events[0]["agencies"])
    assert all("score" not in json.dumps(e) for e in events)
    assert int(cursor_file.read_text()) == events[-1]["cursor"]
    second = runner.invoke(main, watch, env=_env(pki, "mash-1"))
    assert second.exit_code == 0 and second.stdout == ""  # resumed: nothing repeated

    listed = runner.invoke(
        main,
        ["alerts", "list", "--server", address, "--json", "--state", "open"],
        env=_env(pki, "mash-1"),
    )
    assert listed.exit_code == 0
    assert len(listed.stdout.splitlines()) == len({e["alert_id"] for e in events})

    denied = runner.invoke(main, ["alerts", "list", "--server", address], env=_env(pki, "police"))
    assert denied.exit_code == 2 and "PERMISSION_DENIED" in denied.output

    server.stop(1)
    verified = runner.invoke(main, ["audit", "verify", "--data-dir", str(server.config.data_dir)])
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output
