"""Generated code for the gRPC API ``mash.linkage.v1`` (from proto/; run proto/generate.py)."""
