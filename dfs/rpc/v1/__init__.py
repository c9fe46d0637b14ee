"""Generated protobuf/gRPC code (committed; regenerate with scripts/genproto)."""
