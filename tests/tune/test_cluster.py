"""A sweep's storage must be reachable from every machine of its cluster."""

import pytest

from udatune.errors import ConfigError
from udatune.tune.cluster import check_shared_storage


def test_a_local_folder_on_a_cluster_of_several_machines_is_refused_with_what_to_pass():
    with pytest.raises(ConfigError, match="--storage /home/me/sweeps is a local folder") as err:
        check_shared_storage("/home/me/sweeps", hosts=3)
    assert "3 machines" in str(err.value) and "s3://" in str(err.value) and "file:///" in str(err.value)


@pytest.mark.parametrize("storage, hosts", [("/home/me/sweeps", 1), ("s3://bucket/sweeps", 3), ("file:///nfs/sweeps", 2)])
def test_one_machine_or_storage_every_machine_reaches_is_fine(storage, hosts):
    check_shared_storage(storage, hosts)
