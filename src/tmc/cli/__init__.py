"""The `tmc` command line (also `kubectl-tmc` and `tmcctl`): click commands that parse flags and run the processes
assembled in `tmc.server` and `tmc.syncer`. The top layer: nothing imports it but `tmc.__main__`."""
