import stat

import pytest

from clients.encoding.errors import SecretError
from clients.encoding.secret import (
    ENV_VAR,
    Secret,
    generate_secret_file,
    key_check,
    read_secret,
    slot_key,
)


def test_keygen_writes_256_bits_readable_only_by_owner(tmp_path):
    path = tmp_path / "k"
    generate_secret_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret, warning = read_secret(path, {})
    assert warning == ""
    assert len(path.read_text().strip()) == 64


def test_keygen_never_overwrites(tmp_path):
    path = tmp_path / "k"
    generate_secret_file(path)
    before = path.read_text()
    with pytest.raises(SecretError, match="refusing to overwrite"):
        generate_secret_file(path)
    assert path.read_text() == before


def test_secret_from_environment_and_file_wins(tmp_path):
    env_secret, _ = read_secret(None, {ENV_VAR: "ab" * 32})
    path = tmp_path / "k"
    path.write_text("cd" * 32)
    path.chmod(0o600)
    file_secret, _ = read_secret(path, {ENV_VAR: "ab" * 32})
    assert key_check(env_secret) != key_check(file_secret)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ab" * 31, "64 hex characters"),
        ("zz" * 32, "not hexadecimal"),
        ("", "found 0 characters"),
    ],
)
def test_malformed_secrets_are_refused(tmp_path, text, message):
    path = tmp_path / "k"
    path.write_text(text)
    with pytest.raises(SecretError, match=message):
        read_secret(path, {})


def test_missing_secret_names_both_ways_to_give_one(tmp_path):
    with pytest.raises(SecretError, match=f"--secret-file FILE or set {ENV_VAR}"):
        read_secret(None, {})
    with pytest.raises(SecretError, match="cannot read secret file"):
        read_secret(tmp_path / "absent", {})


def test_group_readable_secret_file_gives_a_warning(tmp_path):
    path = tmp_path / "k"
    path.write_text("ab" * 32)
    path.chmod(0o644)
    _, warning = read_secret(path, {})
    assert "chmod 600" in warning


def test_secret_is_redacted_and_keys_are_separated_by_context():
    secret = Secret(bytes(range(32)))
    assert "redacted" in repr(secret) and "0001" not in repr(secret)
    assert slot_key(secret, "name") != slot_key(secret, "date_of_birth")
    assert key_check(secret) == key_check(Secret(bytes(range(32))))
    assert len(key_check(secret)) == 16


def test_secret_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(bytes(32)))
