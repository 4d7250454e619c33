"""lhcflow: generative-network methods for LHC physics as reproducible pipeline stages.

Subpackages: ``generation`` (Pythia 8, LHE showering, FastJet), ``data`` (the canonical event
format and ROOT ingestion), ``physics`` (kinematics, observables), ``plots`` (figures and report tables);
``h5format`` declares the HDF5 formats lhcflow reads back, each with one error type.
"""

__version__ = "0.1.0"
