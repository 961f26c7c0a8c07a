"""What a User-Agent string says about the device: Graph's deviceDetail and the Conditional Access platform.

A User-Agent is whatever the client chose to send, so nothing here is evidence of anything: it names the
operating system and browser for the sign-in log, and the device platform a policy condition reads, the
way Entra does (which also trusts the header). Unknown or absent strings give empty answers, never errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceDescription:
    operating_system: str | None = None  # deviceDetail.operatingSystem, e.g. "Windows 10", "MacOs", "Ios"
    browser: str | None = None  # deviceDetail.browser, e.g. "Chrome 120.0.6099", "Edge 120.0.2210"
    platform: str | None = None  # conditionalAccessDevicePlatform: android, iOS, windows, windowsPhone, macOS, linux


# Order matters: iPhone strings also say "like Mac OS X", Android strings also say "Linux".
_SYSTEMS: tuple[tuple[re.Pattern[str], str, str | None], ...] = (
    (re.compile(r"Windows Phone"), "Windows Phone", "windowsPhone"),
    (re.compile(r"iPhone|iPad|iPod"), "Ios", "iOS"),
    (re.compile(r"Android"), "Android", "android"),
    (re.compile(r"CrOS"), "ChromeOS", None),  # none of Entra's device platforms
    (re.compile(r"Windows NT 10\.0"), "Windows 10", "windows"),
    (re.compile(r"Windows NT 6\.3"), "Windows 8.1", "windows"),
    (re.compile(r"Windows NT 6\.2"), "Windows 8", "windows"),
    (re.compile(r"Windows NT 6\.1"), "Windows 7", "windows"),
    (re.compile(r"Windows"), "Windows", "windows"),
    (re.compile(r"Macintosh|Mac OS X"), "MacOs", "macOS"),
    (re.compile(r"Linux|X11"), "Linux", "linux"),
)

# Browsers that embed another's token come first (Edge and Opera say "Chrome"; Chrome says "Safari").
_BROWSERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Edg(?:e|A|iOS)?/([0-9][0-9.]*)"), "Edge"),
    (re.compile(r"OPR/([0-9][0-9.]*)"), "Opera"),
    (re.compile(r"SamsungBrowser/([0-9][0-9.]*)"), "Samsung Internet"),
    (re.compile(r"(?:HeadlessChrome|Chrome|CriOS)/([0-9][0-9.]*)"), "Chrome"),
    (re.compile(r"(?:Firefox|FxiOS)/([0-9][0-9.]*)"), "Firefox"),
    (re.compile(r"Version/([0-9][0-9.]*).*Safari/"), "Safari"),
    (re.compile(r"python-httpx/([0-9][0-9.]*)"), "python-httpx"),
    (re.compile(r"curl/([0-9][0-9.]*)"), "curl"),
)

_MAX_LENGTH = 1024  # longer strings are cut before matching, so a huge header costs nothing more


def describe(user_agent: str | None) -> DeviceDescription:
    """The operating system, browser (with version) and device platform a User-Agent claims."""
    if not user_agent:
        return DeviceDescription()
    text = user_agent[:_MAX_LENGTH]
    system = next(((name, platform) for pattern, name, platform in _SYSTEMS if pattern.search(text)), None)
    browser = None
    for pattern, name in _BROWSERS:
        found = pattern.search(text)
        if found is not None:
            browser = f"{name} {found.group(1)}"
            break
    return DeviceDescription(
        operating_system=system[0] if system else None,
        browser=browser,
        platform=system[1] if system else None,
    )
