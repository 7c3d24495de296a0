"""The simulation runtime (simpy): hosts with N cores charging each operation its cost from a
cost profile, links with delay, rate and loss, protocols as message exchanges, and paths whose
middlebox outcome is decided by the real models and the real tcpcrypt core."""
