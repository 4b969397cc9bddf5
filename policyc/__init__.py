"""policyc: Kubernetes NetworkPolicy compiler and node dataplane.

Data flows one way: sources -> model -> IR (rule graph) -> passes -> lowered
chains -> backend -> kernel.
"""

__version__ = "0.1.0"
