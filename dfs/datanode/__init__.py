"""The datanode: stores encrypted block replicas, serves and forwards them."""
