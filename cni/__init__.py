"""policyc-cni: a bridge CNI plugin whose pods are born under policy.

``cni.main`` is the import-light executable; the netlink work lives in
``cni.plugin`` and is run either in-process (standalone) or by the node agent
through ``cni.agent_server``.
"""
