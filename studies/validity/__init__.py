"""The validity study (docs/validity.md): `probe` measures the series, `tables` reads them."""
