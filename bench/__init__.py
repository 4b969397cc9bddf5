"""On-demand benchmarks (they print figures and assert nothing); ``bench.scale`` is issue 9's."""
