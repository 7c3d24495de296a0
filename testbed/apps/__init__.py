"""Applications run inside emulated hosts: a request/response server (plain TCP or TLS on
OpenSSL through Python's ssl) and the project's connection load generator."""
