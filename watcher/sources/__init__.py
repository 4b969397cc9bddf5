"""Sources of cluster state: the Kubernetes API (list/watch) or a directory."""
