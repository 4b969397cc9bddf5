"""The seeded hostile-input suite (issue 13, "Tests that keep this fixed").

Generators (``repros``, ``mutate``, ``clusters``) make inputs; ``runner``
drives the real ``policyc`` CLI in a bounded subprocess; ``oracles`` and
``grammar`` judge what it printed and wrote; ``known`` lists what is known to
fail today.  ``bench/hostile_bench.py`` runs the same code at a larger size.
"""
