"""The server's config file: every mistake is named; plain text only when asked, on loopback."""

import pytest

from linkage_service.service.config import load_config
from linkage_service.service.errors import ConfigError

pytestmark = pytest.mark.unit

TLS = '[tls]\ncert = "s.crt"\nkey = "s.key"\nca = "ca.crt"\n'


def _load(tmp_path, text, insecure=False):
    path = tmp_path / "server.toml"
    path.write_text(text)
    return load_config(path, insecure_flag=insecure)


def test_paths_are_relative_to_the_file(tmp_path):
    config = _load(tmp_path, 'listen = "127.0.0.1:0"\ndata_dir = "d"\n' + TLS)
    assert config.data_dir == tmp_path / "d" and config.tls.ca == tmp_path / "ca.crt"
    assert not config.insecure


@pytest.mark.parametrize(
    ("text", "flag", "words"),
    [
        ('listen = "127.0.0.1:0"\n', False, "[tls]"),
        ('listen = "127.0.0.1:0"\ninsecure = true\n', False, "--insecure"),
        ('listen = "0.0.0.0:50051"\ninsecure = true\n', True, "loopback"),
        ('listen = "10.1.2.3:50051"\ninsecure = true\n', True, "loopback"),
        ('listen = "127.0.0.1:0"\n' + TLS, True, "never downgraded"),
        ('listen = "nonsense"\n' + TLS, False, "host:port"),
        ('lisen = "127.0.0.1:0"\n' + TLS, False, "unknown keys lisen"),
        (TLS + '[callers]\n"x" = "superuser"\n', False, "unknown role"),
        (TLS + "[limits]\nmax_batch_records = 0\n", False, "positive"),
        (TLS + "[limits]\nmax_records = 5\n", False, "unknown [limits] keys"),
        ('listen = "127.0.0.1:0"\n[tls]\ncert = "a"\n', False, "lacks key, ca"),
        ("listen = \n", False, "not valid TOML"),
    ],
)
def test_bad_configs_are_named(tmp_path, text, flag, words):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, text, insecure=flag)
    assert words in str(e.value)


def test_plain_text_on_loopback_with_the_flag(tmp_path):
    for host in ("127.0.0.1", "localhost", "[::1]"):
        config = _load(tmp_path, f'listen = "{host}:0"\ninsecure = true\n', insecure=True)
        assert config.insecure and config.tls is None
