"""The Region list kept in the repository (fargo.spec.regions) against botocore's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fargo.spec import regions


def test_the_region_list_is_botocores() -> None:
    botocore = pytest.importorskip("botocore")
    data = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    known = {
        region
        for partition in data["partitions"]
        for region in partition["regions"]
        if not region.endswith("-global")  # the partition's global endpoint, not a Region
    }

    # A Region botocore knows and the list lacks would be refused by fargo validate: then
    # regenerate the list from the newer botocore. (The list may know Regions an older
    # botocore does not: which botocore a fresh install gets varies.)
    assert sorted(known - set(regions.REGIONS)) == [], "regenerate fargo/spec/regions.py"
    assert len(set(regions.REGIONS)) == len(regions.REGIONS)
