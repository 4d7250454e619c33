"""lhcflow: generative-network methods for LHC physics as reproducible pipeline stages.

The workflow (``Snakefile``, ``workflow/rules/*.smk``) runs every stage as a thin script that calls a
function of this package; ``docs/architecture.md`` draws which rule calls which function and which
files flow between them.

Subpackages, in the order data flows through them:

- ``generation``: Pythia 8 generation and showering of LHE files (the one LHE reader, MLM and CKKW-L
  merging read from the file's header), FastJet jets, NanoAOD-like ROOT ntuples, one shard per job;
- ``data``: the canonical event format (HDF5 train/val/test splits), ingestion of ROOT files through
  layout presets or column mappings (object cuts, overlap removal), hard-process datasets;
- ``detector``: the detector stage of the tHj chain, a parametrized response or Delphes;
- ``physics``: the one kinematics module ((E, p) <-> (pT, eta, phi, m), angles), observables, precision
  metrics, parton densities;
- ``models``: conditional generative networks (spline cINN, Bayesian INN, conditional flow matching);
- ``training``: the training loop, resumable checkpoints, SIGTERM as a clean exit;
- ``zjets``: the Z+jets generator chain (thesis Ch. 4): preprocessing, magic transformation, the
  autoregressive chain, Bayesian bands, its workflow stages;
- ``classifier``: classifier networks, weights and diagnostics: the Z+jets classifier metric and the
  hard-process acceptance and multiplicity classifiers;
- ``nis``: neural importance sampling (thesis Ch. 5): integrands, channel mappings, flat MC, VEGAS and
  MadNIS integration, metrics, unweighting, the configured experiments, events as LHE, its workflow
  stages;
- ``thj``: pp -> tHj with a CP-violating top Yukawa (thesis Sec. 6.1): matrix element, phase space,
  cross sections, hard events, shower, reco selection, paired events, fiducial cross sections;
- ``mem``: the ML matrix element method (thesis Sec. 6.2-6.5): transfer, acceptance and sampling
  networks, MEM integration, likelihood scans, the analytic closure test;
- ``plots``: the figures and report tables of every chain (hist + mplhep);
- ``validation``: a run's outputs against the thesis claims (``python -m lhcflow.validation``);
- ``schemas``: the configuration's JSON schema with every default (package data).

Modules: ``config`` (load and validate a configuration), ``config_checks`` (what the schema cannot
express), ``strict_yaml`` (duplicate keys, YAML 1.2 numbers, file and line), ``h5format`` (the HDF5
formats read back, each with one error type), ``errors`` (the user-input error base class),
``atomic`` (atomic outputs, temporaries removed on the rerun), ``logs`` (job logs), ``seeds``
(per-stage seeds), ``provenance`` (run_info.json), ``digest`` (content digests to compare runs) and
``settings`` (the frozen settings base class).

Each chain's ``stages.py`` (``data``, ``zjets``, ``classifier``, ``nis``, ``thj``, ``mem``, ``validation``)
holds its workflow stages, ``<verb>_stage(settings, *, <paths>) -> <result>``: one frozen settings object
built once from the validated config, keyword-only paths, a frozen result dataclass.
"""

__version__ = "0.1.0"
