"""Platform files: the shipped ones load and fit the lab; bad files are refused (file, key, why)."""

from __future__ import annotations

from pathlib import Path

import pytest

from censornet import topology
from probe.configfile import ConfigError
from probe.platforms import (
    BUILTIN_DIR,
    Platform,
    UnknownPlatformError,
    load_platform,
    load_platforms,
    select,
)

EXPECTED = {
    "x",
    "youtube",
    "facebook",
    "instagram",
    "whatsapp",
    "telegram",
    "wikipedia",
    "tiktok",
    "signal",
}

GOOD = """
name = "demo"
title = "Demo"
asns = [64500]
domains = ["demo.test", "cdn.demo.test"]
cert_names = ["demo.test", "*.demo.test"]
throughput = true

[[endpoints]]
url = "https://demo.test/"
throughput_url = "https://cdn.demo.test/big.bin"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def test_every_shipped_platform_loads():
    """Each file in config/platforms loads, and the expected platforms are all there."""
    platforms = load_platforms([BUILTIN_DIR])
    assert EXPECTED <= set(platforms)
    for name, platform in platforms.items():
        assert name == platform.name
        assert platform.plans(), name


def test_every_shipped_endpoint_is_served_by_the_lab():
    """Every endpoint host (and transfer host) is a name in the lab's zone."""
    for platform in load_platforms([BUILTIN_DIR]).values():
        for plan in platform.plans():
            for url in (plan.url, plan.throughput_url, plan.upload_url):
                if url is not None:
                    host = url.split("/")[2]
                    assert host in topology.ZONE, (platform.name, url)


def test_x_platform_matches_the_contract():
    """X: its domains, ASN 13414, http and https endpoints, throughput on a media host."""
    x = load_platforms([BUILTIN_DIR])["x"]
    assert (13414,) == x.asns
    for domain in (
        "x.com",
        "twitter.com",
        "t.co",
        "api.x.com",
        "abs.twimg.com",
        "pbs.twimg.com",
        "video.twimg.com",
    ):
        assert x.owns(domain)
    urls = {p.url for p in x.plans()}
    assert {
        "https://x.com/",
        "http://x.com/",
        "https://twitter.com/",
        "http://twitter.com/",
    } <= urls
    streamed = {p.domain for p in x.plans() if p.throughput_url}
    assert {"x.com", "pbs.twimg.com", "video.twimg.com"} == streamed
    assert all(p.cert_names and p.platform_domains == x.domains for p in x.plans())


def test_x_hosts_without_a_large_object_are_marked():
    """An https host with no large object (nor upload) says so: its verdict rests on others."""
    plans = load_platforms([BUILTIN_DIR])["x"].plans()
    marked = {p.url for p in plans if p.no_large_object}
    assert {"https://twitter.com/", "https://t.co/", "https://abs.twimg.com/"} == marked


def test_plans_drop_transfers_the_flags_forbid(tmp_path):
    """throughput = false means no throughput_url reaches the flows."""
    path = write(tmp_path, "demo", GOOD.replace("throughput = true", "throughput = false"))
    (plan,) = load_platform(path).plans()
    assert plan.throughput_url is None
    assert "demo.test" == plan.domain


def test_a_dropped_in_file_adds_a_platform_and_later_directories_override(tmp_path):
    """A user's directory adds platforms and overrides a built-in one by name."""
    write(tmp_path, "demo", GOOD)
    write(tmp_path, "x", GOOD.replace('name = "demo"', 'name = "x"').replace("Demo", "My X"))
    platforms = load_platforms([BUILTIN_DIR, tmp_path])
    assert "Demo" == platforms["demo"].title
    assert "My X" == platforms["x"].title


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda t: 'colour = "blue"\n' + t, "colour", "unknown key"),
        (lambda t: t + 'colour = "blue"\n', "endpoints[0].colour", "unknown key"),
        (lambda t: t.replace("asns = [64500]", 'asns = ["many"]'), "asns[0]", "integer"),
        (lambda t: t.replace('title = "Demo"', "title = 3"), "title", "string"),
        (
            lambda t: t.replace('url = "https://demo.test/"', 'url = "ftp://demo.test/"'),
            "endpoints[0].url",
            "not an http:// or https:// URL",
        ),
        (
            lambda t: t.replace('url = "https://demo.test/"', 'url = "https:///nohost"'),
            "endpoints[0].url",
            "has no host",
        ),
        (
            lambda t: t.replace('url = "https://demo.test/"', 'url = "https://evil.test/"'),
            "endpoints[0].url",
            "not among the platform's domains",
        ),
        (
            lambda t: t.replace("https://cdn.demo.test/big.bin", "https://cdn.other.test/b"),
            "endpoints[0].throughput_url",
            "not among the platform's domains",
        ),
        (
            lambda t: t.replace('"cdn.demo.test"]', '"Bad Domain!"]'),
            "domains[1]",
            "pattern",
        ),
        (
            lambda t: t.replace(
                'url = "https://demo.test/"', 'url = "http://demo.test/"\nhttp3 = true'
            ),
            "endpoints[0].http3",
            "only an https:// endpoint can speak HTTP/3",
        ),
        (lambda t: t.replace('name = "demo"', 'name = "other"'), "name", "file name"),
        (lambda t: t.replace("[[endpoints]]", "[[endpoint]]"), "endpoint", "unknown key"),
        (lambda t: t + "\n[[[broken", "(file)", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_file_key_and_reason(tmp_path, change, key, reason):
    """The ConfigError message names the file, the key and the reason."""
    path = write(tmp_path, "demo", change(GOOD))
    with pytest.raises(ConfigError) as caught:
        load_platform(path)
    error = caught.value
    assert str(path) == error.file
    (problem,) = [p for p in error.problems if p.key == key]
    assert reason in problem.reason
    assert f"{path}: {key}: " in str(error) and reason in str(error)


def test_a_missing_required_key_is_named(tmp_path):
    """No endpoints at all: the key is named."""
    path = write(tmp_path, "demo", GOOD.split("[[endpoints]]")[0])
    with pytest.raises(ConfigError) as caught:
        load_platform(path)
    assert "endpoints" == caught.value.key
    assert "Field required" in caught.value.reason


def test_every_bad_file_of_a_directory_is_reported(tmp_path):
    """load_platforms reports the problems of all bad files, not only the first."""
    write(tmp_path, "one", GOOD.replace('name = "demo"', 'name = "one"') + "extra = 1\n")
    write(tmp_path, "two", GOOD.replace('name = "demo"', 'name = "two"').replace("64500", '"a"'))
    with pytest.raises(ConfigError) as caught:
        load_platforms([tmp_path])
    files = {p.file for p in caught.value.problems}
    assert {str(tmp_path / "one.toml"), str(tmp_path / "two.toml")} == files


def test_a_missing_directory_is_refused(tmp_path):
    """A platforms directory that does not exist is an error, not an empty set."""
    with pytest.raises(ConfigError, match="no such platforms directory"):
        load_platforms([tmp_path / "nope"])


def test_select_names_the_known_platforms_for_an_unknown_one():
    """Asking for an unknown platform lists the known ones."""
    platforms = load_platforms([BUILTIN_DIR])
    with pytest.raises(UnknownPlatformError) as caught:
        select(platforms, ["x", "myspace"])
    message = str(caught.value)
    assert "'myspace'" in message and "wikipedia" in message and "x" in message
    assert ["x", "signal"] == [p.name for p in select(platforms, ["x", "signal", "x"])]
    assert sorted(platforms) == [p.name for p in select(platforms, [])]


def test_platform_models_are_frozen():
    """Platforms are immutable once loaded."""
    x = load_platforms([BUILTIN_DIR])["x"]
    with pytest.raises(ValueError, match="frozen"):
        x.title = "Y"  # type: ignore[misc]
    assert isinstance(x, Platform)


def test_http3_endpoints_are_marked_where_the_platform_speaks_it():
    """YouTube, Facebook, Instagram and WhatsApp mark their https endpoints http3; X marks none;
    the plans carry the flag, and the lab serves HTTP/3 for every marked host."""
    platforms = load_platforms([BUILTIN_DIR])
    marked = {name for name, p in platforms.items() if any(e.http3 for e in p.endpoints)}
    assert marked == {"youtube", "facebook", "instagram", "whatsapp"}
    for name in marked:
        for plan in platforms[name].plans():
            assert plan.http3 == plan.url.startswith("https://")
            if plan.http3:
                site = next(s for s, names in topology.SITES.items() if plan.domain in names)
                assert site in topology.HTTP3_SITES
