"""Neural importance sampling (thesis Ch. 5): integrands, mappings, VEGAS and MadNIS integration."""
