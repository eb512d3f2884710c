"""REST API for query management and the web console (`streamhouse api`), backed by
StreamQuery objects only and authorized by the caller's own RBAC."""
