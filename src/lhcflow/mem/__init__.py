"""ML matrix element method (thesis §6.2-6.5): transfer networks p_θ(x_reco|x_hard), the acceptance
ε_ψ(x_hard), the sampling network q_φ(x_hard|x_reco, α), single-pass MEM integration of Eq 6.35,
likelihood scans, calibration and pulls."""
