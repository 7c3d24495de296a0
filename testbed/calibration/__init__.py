"""`testbed calibrate`: time each operation on this machine, write the `measured` cost profile
and derive the `kernel` and `xeon-2008` profiles from it."""
