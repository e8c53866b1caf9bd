"""The probe config: the example and lab files load, bad files are refused with file/key/reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.config import DEFAULT_CANARIES, DEFAULT_CONTROL_RESOLVERS, ProbeConfig, load_config
from probe.configfile import ConfigError
from probe.platforms import UnknownPlatformError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "probe.example.toml"
LAB = ROOT / "config" / "lab" / "probe-lab.toml"
DOC = ROOT / "docs" / "config.md"


def all_keys() -> set[str]:
    """Every key of the config file, dotted for tables (``timeouts.dns``)."""
    keys = set()
    for name, field in ProbeConfig.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and hasattr(sub, "model_fields"):
            keys.update(f"{name}.{k}" for k in sub.model_fields)
        else:
            keys.add(name)
    return keys


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "probe.toml"
    path.write_text(text)
    return path


def test_the_example_config_loads_and_equals_the_defaults():
    """config/probe.example.toml loads, and what it sets is the default."""
    config = load_config(EXAMPLE)
    assert ProbeConfig().to_settings() == config.to_settings()
    assert str(EXAMPLE) == config.source


def test_every_key_is_in_the_example_and_the_docs():
    """Each key of the model appears in the example (commented or not) and in docs/config.md."""
    example = EXAMPLE.read_text()
    doc = DOC.read_text()
    for key in sorted(all_keys()):
        leaf = key.rsplit(".", 1)[-1]
        assert f"{leaf} =" in example, key
        assert f"`{key}`" in doc, key


def test_the_lab_config_loads():
    """config/lab/probe-lab.toml: lab DoH at its bootstrap address, the helper, CI timeouts."""
    settings = load_config(LAB).to_settings()
    assert ("https://dns.control.lab/dns-query#198.18.103.53",) == settings.control_resolvers
    assert "http://198.18.3.2:8480" == settings.helper_url
    assert ("https://example.org/", "https://example.com/") == settings.canaries
    assert 2.0 == settings.timeouts.dns == settings.timeouts.tcp_connect
    assert 4.0 == settings.timeouts.http_total
    assert settings.ca_file is None  # given on the command line in the lab


def test_defaults_are_for_the_real_internet():
    """Without a file: public DoH control resolvers, example canaries, the system resolver."""
    config = load_config(None)
    settings = config.to_settings()
    assert DEFAULT_CONTROL_RESOLVERS == settings.control_resolvers
    assert "https://dns.google/dns-query" in settings.control_resolvers
    assert "https://cloudflare-dns.com/dns-query" in settings.control_resolvers
    assert DEFAULT_CANARIES == settings.canaries
    assert settings.system_resolver is None
    assert settings.helper_url is None
    assert 1024 * 1024 == config.budget.run_bytes
    assert "(defaults)" == config.source


def test_settings_carry_every_value(tmp_path):
    """to_settings passes timeouts, budget, retries, concurrency and trust through."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not parsed here")
    path = write(
        tmp_path,
        """
system_resolver = "127.0.0.1:5353"
control_resolvers = ["udp:127.0.0.1:5354", "https://doh.test/dns-query#127.0.0.1"]
helper_url = "http://127.0.0.1:8480"
ca_file = "ca.pem"
canaries = ["https://canary.test/"]
benign_sni = "benign.test"
retries = 2
concurrency = 3
user_agent = "ua/1"
[timeouts]
dns = 0.5
tcp_connect = 0.6
tls_handshake = 0.7
http_total = 0.8
throughput = 0.9
[budget]
run_bytes = 1000
throughput_bytes = 100
upload_bytes = 10
""",
    )
    s = load_config(path).to_settings()
    assert "127.0.0.1:5353" == s.system_resolver
    assert ("udp:127.0.0.1:5354", "https://doh.test/dns-query#127.0.0.1") == s.control_resolvers
    assert ca == s.ca_file
    assert ("https://canary.test/",) == s.canaries
    assert ("benign.test", 2, 3, "ua/1") == (s.benign_sni, s.retries, s.concurrency, s.user_agent)
    t = s.timeouts
    assert (0.5, 0.6, 0.7, 0.8, 0.9) == (
        t.dns,
        t.tcp_connect,
        t.tls_handshake,
        t.http_total,
        t.throughput,
    )
    assert (100, 10) == (s.throughput_bytes, s.upload_bytes)


def test_system_resolver_from_a_resolv_conf_file(tmp_path):
    """A path is read like resolv.conf: the first nameserver, comments skipped."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("# lab\nsearch lab\nnameserver 198.18.10.53 # isp1\nnameserver 1.1.1.1\n")
    path = write(tmp_path, 'system_resolver = "./resolv.conf"\n')
    assert "198.18.10.53" == load_config(path).to_settings().system_resolver


def test_a_resolv_conf_without_nameserver_is_refused(tmp_path):
    """The error names the config file and the key."""
    (tmp_path / "resolv.conf").write_text("search lab\n")
    path = write(tmp_path, 'system_resolver = "./resolv.conf"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path).to_settings()
    assert (str(path), "system_resolver") == (caught.value.file, caught.value.key)
    assert "names no nameserver" in caught.value.reason


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("colour = 1\n", "colour", "unknown key"),
        ("[timeouts]\nconnect = 1\n", "timeouts.connect", "unknown key"),
        ('retries = "two"\n', "retries", "integer"),
        ("retries = 9\n", "retries", "less than or equal to 5"),
        ("[timeouts]\ndns = -1\n", "timeouts.dns", "greater than 0"),
        ('helper_url = "ftp://helper.test/"\n', "helper_url", "not an http:// or https:// URL"),
        ('canaries = ["https://ok.test/", "nohost"]\n', "canaries[1]", "http://"),
        ("canaries = []\n", "canaries", "at least 1"),
        ('control_resolvers = ["8.8.8.8"]\n', "control_resolvers[0]", "is not udp:IP"),
        (
            'control_resolvers = ["https://doh.test/q#not-an-ip"]\n',
            "control_resolvers[0]",
            "not an IP address",
        ),
        ('system_resolver = "my-resolver"\n', "system_resolver", "neither IP[:PORT]"),
        ('benign_sni = "Not A Name"\n', "benign_sni", "pattern"),
        ('[vantage]\nnetwork = "203.0.113.7"\n', "vantage.network", "never an IP address"),
        ('[vantage]\nnetwork = "10.0.0.0/8"\n', "vantage.network", "never an IP address"),
        ('[vantage]\ncountry = "pk"\n', "vantage.country", "pattern"),
        ('platform_dirs = ["does-not-exist"]\n', "platform_dirs[0]", "not a directory"),
        ('ca_file = "missing.pem"\n', "ca_file", "not a file"),
        ("[budget]\nrun_bytes = -5\n", "budget.run_bytes", "greater than or equal to 0"),
        ("platforms = 'x'\n", "platforms", "tuple"),
        ("retries = \n", "(file)", "not valid TOML"),
    ],
)
def test_a_bad_config_is_refused_naming_file_key_and_reason(tmp_path, text, key, reason):
    """Every problem names the file, the dotted key and the reason."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    (problem,) = [p for p in error.problems if p.key == key]
    assert str(path) == problem.file
    assert reason in problem.reason
    assert f"{path}: {key}: " in str(error)


def test_a_missing_config_file_is_refused(tmp_path):
    """A --config that does not exist is an error naming it."""
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_platform_dirs_are_relative_to_the_file_and_add_platforms(tmp_path):
    """A dropped-in platform file in a configured directory becomes a platform to run."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "demo.toml").write_text(
        'name = "demo"\ntitle = "Demo"\ndomains = ["demo.test"]\n'
        '[[endpoints]]\nurl = "https://demo.test/"\n'
    )
    path = write(tmp_path, 'platform_dirs = ["mine"]\nplatforms = ["demo", "x"]\n')
    config = load_config(path)
    assert (mine,) == config.platform_dirs
    assert ["demo", "x"] == [p.name for p in config.chosen_platforms()]
    assert ["x"] == [p.name for p in config.chosen_platforms(["x"])]
    only_mine = load_config(
        write(tmp_path, 'builtin_platforms = false\nplatform_dirs = ["mine"]\n')
    )
    assert ["demo"] == [p.name for p in only_mine.chosen_platforms()]


def test_an_unknown_configured_platform_names_the_known_ones(tmp_path):
    """platforms = ["nope"] is refused when the platforms are chosen."""
    config = load_config(write(tmp_path, 'platforms = ["nope"]\n'))
    with pytest.raises(UnknownPlatformError, match="known: facebook"):
        config.chosen_platforms()


def test_with_ca_file_overrides_and_checks(tmp_path):
    """--ca-file replaces the configured trust store; a missing file is refused."""
    ca = tmp_path / "lab-ca.pem"
    ca.write_text("pem")
    config = load_config(LAB).with_ca_file(ca)
    assert ca == config.to_settings().ca_file
    assert str(LAB) == config.source
    with pytest.raises(ConfigError) as caught:
        config.with_ca_file(tmp_path / "missing.pem")
    assert "ca_file" == caught.value.key


def test_config_is_frozen():
    """The configuration cannot change under a running probe."""
    with pytest.raises(ValueError, match="frozen"):
        ProbeConfig().retries = 3  # type: ignore[misc]
