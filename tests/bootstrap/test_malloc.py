import sys

import pytest

from bootstrap.malloc import fix_mmap_threshold


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_fixing_the_mmap_threshold_is_accepted_by_glibc() -> None:
    assert fix_mmap_threshold() is True
