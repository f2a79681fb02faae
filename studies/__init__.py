"""The project's studies: not part of the installed plugin, run from a source checkout.

Each step runs as a module from the repository's root and shares the plugin's code instead of
copying it; each has a smoke test on a tiny model (tests/test_studies.py). Their committed
outputs lie beside them, under `results/`; docs/ holds the prose that reads them.

- `validity`: does an IE candidate measure the model? (docs/validity.md; `make validity`, ...)
- `reproduction`: the paper's claims on the models that run offline (docs/reproduction.md)
- `uncertainty`: every ± against replication, and the default's N/2 check (docs/uncertainty.md)
- `benchmarks`: speed, accuracy and memory (docs/performance.md)
- `family`, `synthetic`, `models`: a family of small models trained here, ground-truth MI
  cases, and the study-only pretrained models shipped in wheels
- `readme`: the README's example output (`make readme-example`)
- `render`: the README and the study documents rendered from the results files (`make
  check-studies` checks them)
"""
