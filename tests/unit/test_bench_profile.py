"""The benchmark's CPU-time split by binary, from `perf report --sort dso --stdio`."""

from __future__ import annotations

import pytest

from bench import profile

# As perf 6.1 prints it (header comments, then one line per shared object).
REPORT = """\
# To display the perf.data header info, please use --header/--header-only options.
#
# Total Lost Samples: 0
#
# Samples: 5K of event 'cpu-clock'
# Event count (approx.): 11142284000
#
# Overhead  Shared Object
# ........  ..............................................
#
    70.14%  libpython3.11.so.1.0
    11.86%  [kernel.kallsyms]
     4.71%  libc.so.6
     4.40%  _rust.abi3.so
     1.73%  libpq-e9b5c9ac.so.5.18
     1.49%  loop.cpython-311-x86_64-linux-gnu.so
     1.06%  _psycopg.cpython-311-x86_64-linux-gnu.so
     0.88%  _pydantic_core.cpython-311-x86_64-linux-gnu.so
     0.68%  libcrypto.so.3
     0.68%  parser.cpython-311-x86_64-linux-gnu.so


"""


def test_shared_objects_are_grouped_into_the_costs_of_a_sign_in() -> None:
    shares = profile.native_shares(REPORT)
    assert shares["Python interpreter (bytecode, objects, dicts, calls)"] == pytest.approx(70.14)
    assert shares["kernel (system calls: sockets, epoll, scheduling)"] == pytest.approx(11.86)
    assert shares["cryptography (ES256 signing and verification, hashes)"] == pytest.approx(5.08)
    assert shares["libpq and psycopg's C"] == pytest.approx(2.79)
    assert shares["event loop and HTTP parser (uvloop, httptools)"] == pytest.approx(2.17)
    assert shares["C library (malloc, memcpy)"] == pytest.approx(4.71)
    assert shares["other native"] == pytest.approx(0.88)
    assert sum(shares.values()) == pytest.approx(97.63)  # what perf printed, no more


def test_a_report_without_samples_has_no_shares() -> None:
    assert not profile.native_shares("# Samples: 0\n#\n\n")
