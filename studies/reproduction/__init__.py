"""The reproduction study (docs/reproduction.md): `run.sh` runs its steps in order."""
