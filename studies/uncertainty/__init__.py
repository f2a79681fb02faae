"""The uncertainty study (docs/uncertainty.md): `study` replicates and checks N."""
