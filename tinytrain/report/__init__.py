"""Reports of training runs: an HTML page (jinja2) with PNG plots (matplotlib, Agg backend).

`write_run_report(record, out_dir)` writes, for one `tinytrain emulate` run record:

- `report.html`: the summary, the SRAM breakdown (measured beside predicted), instructions per step by
  phase and the largest kernels of each phase, accuracy before/after and the classifier-only baseline,
  the device/host agreement, the configuration and the command that reproduces it;
- `learning_curve.png`: per-step training loss on the device (and its running mean), epochs marked;
- `memory_breakdown.png`: measured vs predicted SRAM by category against the board's budget;
- `record.json`: the run record (the per-function profile trimmed to the kernels).

The report reads the run record only; it never imports the job (tinytrain.job) that wrote it.
`summary(record)` is the text `tinytrain emulate` prints.
"""

from tinytrain.report.run import write_run_report
from tinytrain.report.summary import summary

__all__ = ["summary", "write_run_report"]
