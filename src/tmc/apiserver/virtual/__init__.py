"""Virtual workspaces: alternative views of the hub's objects served under `/services/<name>/...`."""
