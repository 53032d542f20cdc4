"""The allocator tuning the launcher applies really takes effect on glibc systems."""

import platform

import pytest

from metarl.memory import keep_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_mallopt_settings_take_effect():
    assert keep_freed_memory()
