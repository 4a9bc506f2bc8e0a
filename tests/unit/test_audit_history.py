"""The audit's reading and views as plain functions: CLI rows with stored objects, the stores, the page, the fleet."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from audit.fleet import fleet, fleet_markdown, image_tags, version_key
from audit.page import PAGE_SIZE, report_html
from audit.report import report_json, report_markdown
from cli.pulumi import redact_url
from cli.stack_history import StackState, stored_updates
from cli.state_store import FileStore, PostgresStore, open_store
from model.errors import InputError
from model.history import Secret, StoredUpdate, build_updates, ran_by
from tests.support.synthetic_history import START, cli_row, deployment, synthetic_history


def test_cli_rows_and_stored_objects_make_numbered_updates_with_releases_and_ciphertexts() -> None:
    rows = [cli_row("update", "failed", START + 60, "by ana: second", {"p:k": {"secret": True}, "p:plain": {"value": "x", "secret": False},
                                                                      "p:obj": {"value": "{\"a\":1}", "objectValue": {"a": 1}, "secret": False}}),
            cli_row("update", "succeeded", START, "by ana: first")]
    stored = [StoredUpdate("h/s-1.history.json", {"kind": "update", "startTime": START}, deployment({"astrago": "1.0.0"})),
              StoredUpdate("h/s-2.history.json", {"kind": "update", "startTime": START + 60, "config": {"p:k": {"secure": "v1:abc"}}},
                           deployment({"astrago": "1.1.0"}, ciphertext="v1:release-secret"))]
    seen: set[str] = set()
    first, second = build_updates(rows, stored, seen)
    assert (first.number, first.result, second.number, second.result) == (1, "succeeded", 2, "failed")
    assert first.releases is not None and first.releases["astrago"].version == "1.0.0"
    assert second.releases is not None and second.releases["astrago"].version == "1.1.0"
    assert second.releases["astrago"].masked_values()["mariadb"]["password"] == "[secret]"
    secret = second.config["p:k"]
    assert isinstance(secret, Secret) and secret.ciphertext == "v1:abc"
    assert second.config["p:plain"] == "x" and second.config["p:obj"] == {"a": 1}
    assert {"v1:abc", "v1:release-secret"} <= seen
    assert ran_by(first).startswith("ana, Audit Tester (commit author)")
    assert second.source == "h/s-2.history.json"


def test_cli_and_storage_that_disagree_are_refused() -> None:
    rows = [cli_row("update", "succeeded", START, "one")]
    with pytest.raises(InputError, match="changed while it was read"):
        build_updates(rows, [StoredUpdate("k", {"kind": "refresh", "startTime": START}, None)], set())
    with pytest.raises(InputError, match="holds 0 history entries"):
        build_updates(rows, [], set())
    later = [StoredUpdate("k1", {"kind": "update", "startTime": START}, None), StoredUpdate("k2", {"kind": "update", "startTime": START + 9}, None)]
    assert [u.source for u in build_updates(rows, later, set())] == ["k1"], "an update that ended after the CLI's list is left for the next run"


def test_without_stored_objects_only_the_latest_update_has_releases_and_secrets_are_unknown() -> None:
    rows = [cli_row("update", "succeeded", START + 60, "two", {"p:k": {"secret": True}}), cli_row("update", "succeeded", START, "one")]
    first, second = build_updates(rows, None, set(), latest=deployment({"astrago": "2.0.0"}))
    assert first.releases is None and second.releases is not None and second.releases["astrago"].version == "2.0.0"
    assert isinstance(second.config["p:k"], Secret) and second.config["p:k"].ciphertext is None


def test_file_store_reads_plain_and_gzip_objects_and_refuses_zstd(tmp_path: Path) -> None:
    folder = tmp_path / ".pulumi/history/proj/dev"
    folder.mkdir(parents=True)
    (folder / "dev-100.history.json").write_text(json.dumps({"kind": "update", "startTime": 1}))
    (folder / "dev-100.checkpoint.json.gz").write_bytes(gzip.compress(json.dumps({"checkpoint": {"latest": deployment({"astrago": "1.0.0"})}}).encode()))
    (folder / "dev-200.history.json").write_text(json.dumps({"kind": "refresh", "startTime": 2}))
    store = open_store(f"file://{tmp_path}")
    assert isinstance(store, FileStore)
    [one, two] = stored_updates(store, "proj", "dev")
    assert one.deployment is not None and two.deployment is None and two.entry["kind"] == "refresh"
    (folder / "dev-300.history.json.zst").write_bytes(b"\x28\xb5\x2f\xfd")
    with pytest.raises(InputError, match="zstd"):
        stored_updates(store, "proj", "dev")
    with pytest.raises(InputError, match="no Pulumi state here"):
        open_store(f"file://{tmp_path / 'nothing'}")


def test_postgres_store_keeps_the_password_off_the_command_line_and_prefixes_keys_with_the_database() -> None:
    store = PostgresStore("postgres://astrago:s3cr%3Ait@127.0.0.1:5433/astrago_state?sslmode=disable&table=my_state")
    connection, env = store._connection()
    assert "s3cr" not in connection and env["PGPASSWORD"] == "s3cr:it"
    assert connection == "postgresql://astrago@127.0.0.1:5433/astrago_state?sslmode=disable"
    assert store.key_prefix == "astrago_state/" and store.table == "my_state"
    assert store.description == "postgres://****:****@127.0.0.1:5433/astrago_state?sslmode=disable&table=my_state"
    with pytest.raises(InputError, match="plain SQL name"):
        _ = PostgresStore("postgres://u:p@h/db?table=x;drop").table
    assert open_store("s3://bucket/state") is None
    with pytest.raises(InputError, match="not a self-hosted"):
        open_store("https://api.pulumi.com")


def test_redact_url_masks_credentials_wherever_they_appear() -> None:
    assert redact_url("failed: postgres://u:pw@h:1/db?x=1 down") == "failed: postgres://****:****@h:1/db?x=1 down"
    assert redact_url("file:///tmp/backend") == "file:///tmp/backend"


def test_the_page_stays_readable_with_200_updates() -> None:
    history = synthetic_history(200)
    page = report_html(history)
    events = re.findall(r"<details class='ev (\w[\w-]*)' id='u(\d+)'[^>]*?( open)?>", page)
    assert [int(n) for _, n, _ in events] == list(range(200, 0, -1)), "newest first, every update once"
    assert [n for _, n, o in events if o] == ["200"], "only the newest update is folded out"
    assert sum(1 for r, _, _ in events if r == "failed") == len([i for i in range(200) if i % 7 == 6])
    assert f"var PAGE={PAGE_SIZE};" in page and PAGE_SIZE < 200
    assert "src=" not in page and all(h.startswith("#") for h in re.findall(r"href='([^']*)'", page)), "no external asset or link"
    assert "default-src 'none'" in page
    assert "charts: astrago 1.0.0\u21921.1.0" in page, "the update that raised a chart version says so in its line"
    history.guard(page)
    assert "ct-config" not in page and "ct-values" not in page


def test_markdown_and_json_list_every_update() -> None:
    history = synthetic_history(30)
    data = json.loads(report_json(history))
    assert [u["number"] for u in data["updates"]] == list(range(1, 31))
    assert data["updates"][0]["releases"]["astrago"]["values"]["mariadb"]["password"] == "[secret]"
    assert report_markdown(history).count("\n## Update ") == 30


def test_fleet_marks_stacks_behind_and_versions_with_several_digests() -> None:
    [newest] = build_updates([cli_row("update", "succeeded", START, "by ana: up")], None, set(), latest=deployment({"astrago": "1.10.0", "keycloak-addons": "1.0.0"}))
    [older] = build_updates([cli_row("update", "failed", START, "by bo: up")], None, set(), latest=deployment({"astrago": "1.9.2", "keycloak-addons": "1.0.0"}, tag="core-prod-1"))
    other = deployment({"astrago": "1.10.0"})
    other["resources"][1]["inputs"]["description"] = "chart 1.10.0 sha256:" + "0" * 64
    [third] = build_updates([cli_row("update", "succeeded", START, "by cy: up")], None, set(), latest=other)
    stacks = [StackState("dev", newest, newest.releases, False), StackState("site-a", older, older.releases, False),
              StackState("site-b", third, third.releases, False), StackState("empty", None, None, False)]
    view = fleet("postgres://****:****@h/db", stacks)
    assert view.newest == {"astrago": "1.10.0", "keycloak-addons": "1.0.0"}
    assert view.cells[("site-a", "astrago")].behind and not view.cells[("dev", "astrago")].behind
    assert view.cells[("dev", "astrago")].mixed and view.cells[("site-b", "astrago")].mixed and not view.cells[("site-a", "astrago")].mixed
    text = fleet_markdown(view)
    assert "| site-a |" in text and "1.9.2" in text and "(behind)" in text and "| empty | never updated |" in text
    assert image_tags(older.releases)["core"] == "core-prod-1" and image_tags(older.releases)["experiment"] == "(off)"
    assert image_tags(older.releases)["batch"] == "(chart default)" and image_tags(None)["core"] == "-"


def test_chart_versions_order_as_semver() -> None:
    assert sorted(["1.10.0", "1.9.2", "1.0.0-rc1", "1.0.0", "v2.0.0"], key=version_key) == ["1.0.0-rc1", "1.0.0", "1.9.2", "1.10.0", "v2.0.0"]
