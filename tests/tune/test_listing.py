"""What `udatune ls` says of a sweep whose search finished: its confirmation decides."""

from __future__ import annotations

from udatune.tune import store
from udatune.tune.listing import with_confirmation


def test_a_finished_search_is_only_as_finished_as_its_confirmation(tmp_path, driver_writer):
    path = str(tmp_path / "s")
    asked, not_asked = store.Manifest(settings={"confirm": 1, "confirm_seeds": [100]}), store.Manifest(settings={})
    driver_writer.write(path, "finished", alive=False)
    ended = store.read_state(path)
    assert with_confirmation(path, not_asked, ended) == "finished"
    # `udatune search --confirm 1` stopped between its search and its confirmation: resume runs it.
    assert with_confirmation(path, asked, ended) == "interrupted"
    # ... unless the search's own process still lives: it starts the confirmation next.
    driver_writer.write(path, "finished", alive=True)
    assert with_confirmation(path, asked, store.read_state(path)) == "running"
    # A search that has not finished says so, whatever its confirmation.
    driver_writer.write(path, "running", alive=False)
    assert with_confirmation(path, asked, store.read_state(path)) == "interrupted"

    # Once the confirmation has a sweep of its own, its driver decides (asked for or not: a
    # `udatune confirm` run later counts too).
    confirmation = store.confirm_path(path)
    store.write_manifest(confirmation, store.Manifest(name=store.CONFIRM, path=confirmation))
    for state, alive, shown in (("running", True, "running"), ("running", False, "interrupted"), ("finished", False, "finished")):
        driver_writer.write(confirmation, state, alive)
        assert with_confirmation(path, not_asked, ended) == shown
        assert with_confirmation(path, asked, ended) == shown
