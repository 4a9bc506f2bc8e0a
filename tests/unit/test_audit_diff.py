"""audit-diff on plain data: the structural diff's leaf paths, secrets compared by the config key they come from."""

from __future__ import annotations

from audit.diff import diff_text, diff_updates
from model.history import History, StoredUpdate, build_updates
from tests.support.synthetic_history import START, cli_row, deployment


def _history(second_secret: str) -> History:
    rows = [cli_row("update", "succeeded", START + 60, "by ana: two", {"astrago-deploy:mariadbPassword": {"secret": True}}),
            cli_row("update", "succeeded", START, "by ana: one", {"astrago-deploy:mariadbPassword": {"secret": True}})]
    one, two = deployment({"astrago": "1.0.0", "keycloak-addons": "1.0.0"}), deployment({"astrago": "1.0.0"}, ciphertext="v1:other")
    one["resources"][1]["inputs"]["values"]["hosts"] = ["a", "b"]
    one["resources"][1]["inputs"]["values"]["labels"] = {"app.kubernetes.io/name": "w"}
    two["resources"][1]["inputs"]["values"]["hosts"] = ["a", "c"]
    two["resources"][1]["inputs"]["values"]["labels"] = {"app.kubernetes.io/name": "x"}
    stored = [StoredUpdate("k1", {"kind": "update", "startTime": START, "config": {"astrago-deploy:mariadbPassword": {"secure": "v1:c1"}}}, one),
              StoredUpdate("k2", {"kind": "update", "startTime": START + 60, "config": {"astrago-deploy:mariadbPassword": {"secure": second_secret}}}, two)]
    history = History(stack="s", project="astrago-deploy", backend="file:///b", updates=[])
    history.updates = build_updates(rows, stored, history.ciphertexts)
    return history


SECRETS = {"astrago": {"mariadb.password": "mariadbPassword"}}


def test_leaf_changes_with_list_indexes_quoted_keys_and_a_removed_release() -> None:
    history = _history("v1:c1")
    diff = diff_updates(history, history.get(1), history.get(2), SECRETS)
    text = history.guard(diff_text(history, diff))
    assert diff.removed == ["keycloak-addons"] and "release removed: keycloak-addons (chart 1.0.0 sha256:" in text
    assert 'values.hosts[1]: "b" -> "c"' in text
    assert 'values.labels["app.kubernetes.io/name"]: "w" -> "x"' in text
    assert "password" not in text, "a secret whose config key kept its ciphertext did not change (the state encrypts again each update)"


def test_a_secret_set_again_shows_masked_with_the_reason() -> None:
    history = _history("v1:c2")
    text = history.guard(diff_text(history, diff_updates(history, history.get(1), history.get(2), SECRETS)))
    assert "values.mariadb.password: [secret] -> [secret]  [changed: secret config mariadbPassword was set again]" in text
    assert "astrago-deploy:mariadbPassword: [secret] -> [secret]  [changed: set again]" in text
    assert "v1:" not in text
