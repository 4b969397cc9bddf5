"""policyc watch: the node agent that keeps the kernel equal to the cluster."""
