"""Accuracy evidence on the host training reference: the paper's Table 1 and Fig. 9 shapes and the update
rounding rule, on the shipped datasets, several seeds (`tinytrain experiment`, docs/evidence.md).

- `config`: settings, run specs and the suites;
- `runner`: one run (int8 host reference or fp32 PyTorch twin) -> a JSON row with accuracy and memory;
- `pipeline`: cache, parallel execution, learning-rate selection;
- `report`: CSV / Markdown tables and PNG plots.
"""
