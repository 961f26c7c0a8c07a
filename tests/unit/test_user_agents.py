"""core/user_agents: the operating system, browser and Conditional Access platform a User-Agent claims."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passgate.core.user_agents import DeviceDescription, describe

PLATFORMS = {None, "android", "iOS", "windows", "windowsPhone", "macOS", "linux"}


@pytest.mark.parametrize(("agent", "expected"), [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.2903.86", DeviceDescription("Windows 10", "Edge 131.0.2903.86", "windows")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.85 "
     "Safari/537.36", DeviceDescription("Windows 10", "Chrome 131.0.6778.85", "windows")),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
     "Safari/605.1.15", DeviceDescription("MacOs", "Safari 18.1", "macOS")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", DeviceDescription("Ios", "Safari 18.1", "iOS")),
    ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 "
     "Mobile/15E148 Safari/604.1", DeviceDescription("Ios", "Chrome 120.0.6099.119", "iOS")),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile "
     "Safari/537.36", DeviceDescription("Android", "Chrome 131.0.6778.81", "android")),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 "
     "Chrome/122.0.0.0 Mobile Safari/537.36", DeviceDescription("Android", "Samsung Internet 26.0", "android")),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
     DeviceDescription("Linux", "Firefox 133.0", "linux")),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", DeviceDescription("ChromeOS", "Chrome 120.0.0.0", None)),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 "
     "Safari/537.36", DeviceDescription("Linux", "Chrome 131.0.6778.85", "linux")),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
     DeviceDescription("Windows 7", None, "windows")),
    ("curl/8.5.0", DeviceDescription(None, "curl 8.5.0", None)),
    ("python-httpx/0.28.1", DeviceDescription(None, "python-httpx 0.28.1", None)),
    ("testclient", DeviceDescription()),
    ("", DeviceDescription()),
    (None, DeviceDescription()),
])
def test_known_agents(agent: str | None, expected: DeviceDescription) -> None:
    assert describe(agent) == expected


@given(st.text(max_size=2000))
def test_any_text_gives_an_answer_in_the_platform_vocabulary(agent: str) -> None:
    found = describe(agent)
    assert found.platform in PLATFORMS
    assert (found.platform is None) == (found.operating_system is None)


@given(st.text(max_size=200), st.text(max_size=3000))
def test_only_the_first_kilobyte_is_read(head: str, tail: str) -> None:
    padded = head.ljust(1024, " ")
    assert describe(padded + tail) == describe(padded)
