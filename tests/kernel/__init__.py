"""Kernel test harness for policyc: network-namespace labs with real packets.

Entry points live in ``netlab`` (``Lab``, ``build_standard``, ``require_kernel``)
and ``fixtures`` (pytest fixtures ``kernel_required`` and ``lab``).
"""
