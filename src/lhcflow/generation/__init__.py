"""Event generation: Pythia 8 Z+jets / LHE showering, FastJet jets, NanoAOD-like ntuples."""

from lhcflow.generation.pythia import (
    lhe_settings,
    read_lhe_header,
    run_pythia,
    count_lhe_events,
    shower_lhe,
    zjets_settings,
)

__all__ = ["lhe_settings", "read_lhe_header", "run_pythia", "count_lhe_events", "shower_lhe",
           "zjets_settings"]
