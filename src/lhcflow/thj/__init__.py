"""pp → tHj with a CP-violating top Yukawa (thesis §6.1): matrix element, hard events, reco datasets."""
