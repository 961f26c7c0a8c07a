"""bench.census counts the statements of the sign-in steps only, per sign-in."""

from bench.census import census, kind


def test_statement_kinds() -> None:
    assert kind("INSERT INTO sign_ins (id, created_at) VALUES ($1, $2)") == "INSERT sign_ins"
    assert kind("UPDATE challenges SET used_at=$1 WHERE challenges.value = $2") == "UPDATE challenges"
    assert kind("DELETE FROM challenges WHERE challenges.expires_at < $1") == "DELETE challenges"
    assert kind("SELECT users.id, users.user_principal_name ") == "SELECT"
    assert kind("BEGIN") == "BEGIN" and kind("") == "?"


def test_only_the_sign_in_steps_are_counted() -> None:
    provisioning = ["BEGIN", "INSERT users", "INSERT passkeys", "COMMIT"]
    sign_in = ["BEGIN", "SELECT", "INSERT oauth_pending_authorizations", "COMMIT",
               "BEGIN", "SELECT", "INSERT challenges", "COMMIT"]
    refresh = ["BEGIN", "SELECT", "UPDATE oauth_refresh_tokens", "INSERT oauth_refresh_tokens", "COMMIT"]
    signins, counts = census(provisioning + sign_in * 3 + refresh * 2)
    assert signins == 3
    assert sum(counts.values()) == 3 * len(sign_in)
    assert counts["BEGIN"] == 6 and counts["INSERT challenges"] == 3 and counts["INSERT users"] == 0
