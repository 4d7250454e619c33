"""lhcflow: generative-network methods for LHC physics as reproducible pipeline stages.

Subpackages: ``generation`` (Pythia 8, LHE showering, FastJet), ``data`` (the canonical event
format and ROOT ingestion), ``physics`` (observables), ``plots`` (figures and report tables).
"""

__version__ = "0.1.0"
