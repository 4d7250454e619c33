"""Neural importance sampling (thesis Ch. 5): integrands, mappings, VEGAS and MadNIS integration.

Integrands: ``integrand`` (the multi-channel interface and its per-channel evaluation), ``mappings``,
``toys`` (camel, crossed ring), ``drell_yan``. Integration: ``sampling`` (random streams, call
allocation, samples), ``base_integrator`` (the shared estimator and result), ``baselines`` (flat MC,
VEGAS), ``madnis_wrapper`` (MadNIS through madnis' public API), ``affine_flow``, ``losses``, ``run``
(run by method name), ``settings`` (defaults and thesis presets). Results: ``metrics``, ``unweighting``,
``variance``, ``lhe``, ``thesis``. Workflow: ``experiments`` (what a run integrates, summaries) and
``stages`` (the rule stages).
"""
