"""``bioshard demo``: the whole stack with a demo site and simulated traffic.

Modules: :mod:`.site` (tier pools that also serve the collector's demo page),
:mod:`.actors` (who sends what), :mod:`.client` (HTTP through Envoy), :mod:`.simulator`
(threads and phases), :mod:`.tally` / :mod:`.accesslog` / :mod:`.prom` (counting, reasons,
the sidecar's metrics), :mod:`.summary` / :mod:`.table` (JSON and text), :mod:`.run`
(orchestration) and :mod:`.cli` (the ``demo`` sub-command).  See ``docs/demo.md``.

Entry points: :func:`sidecar.demo.run.run_demo` with :class:`sidecar.demo.run.DemoOptions`;
nothing is imported here so that ``bioshard --help`` stays quick.
"""

__all__: list[str] = []
