"""Does a trial fit? Answered from the nodes' resources, before a sweep starts."""

import pytest

from udatune.errors import ConfigError
from udatune.tune.capacity import NodeCapacity, check_trial_fits, workers_that_fit


def test_workers_per_node_is_bounded_by_cpus_and_gpus():
    node = NodeCapacity(cpus=8, gpus=2)
    assert workers_that_fit(node, cpus=2, gpus=0) == 4
    assert workers_that_fit(node, cpus=2, gpus=1) == 2
    assert workers_that_fit(node, cpus=1, gpus=0.5) == 4
    assert workers_that_fit(NodeCapacity(cpus=3, gpus=0), cpus=1.5, gpus=0) == 2  # no float drift below 2


def test_gpus_on_a_cluster_without_any_are_refused_whatever_else_fits():
    with pytest.raises(ConfigError, match="--gpus-per-trial 1: .* no GPU"):
        check_trial_fits(1, 1.0, 1.0, [NodeCapacity(64, 0), NodeCapacity(64, 0)], "the cluster")


def test_workers_may_spread_over_nodes_but_each_must_fit_on_one():
    nodes = [NodeCapacity(4, 1), NodeCapacity(4, 1)]
    check_trial_fits(2, 4.0, 1.0, nodes, "the cluster")  # one worker per node
    with pytest.raises(ConfigError, match="3 worker"):
        check_trial_fits(3, 4.0, 1.0, nodes, "the cluster")
    with pytest.raises(ConfigError, match="largest node: 4 CPUs"):
        check_trial_fits(1, 6.0, 0.0, nodes, "the cluster")  # 8 CPUs in all, but no node has 6


def test_the_message_says_how_to_fix_it_on_this_machine():
    with pytest.raises(ConfigError, match="--num-cpus"):
        check_trial_fits(3, 1.0, 0.0, [NodeCapacity(2, 0)], "this machine")
