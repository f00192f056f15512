"""Transport security: a local certificate authority for mutual TLS, and loading TLS files."""
