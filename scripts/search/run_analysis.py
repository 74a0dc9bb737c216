"""The contribution analysis behind results/search (mcunet-5fps on digits @128): resumable.

nohup python scripts/search/run_analysis.py > results/search/analysis.log 2>&1 &   # from the repo root
"""

import time

from tinytrain.sparse.contrib import AnalysisSettings, analyze

LAYERS = tuple(f"blocks.{i}.pointwise1" for i in range(7, 14))
SETTINGS = AnalysisSettings(
    model="mcunet-5fps",
    dataset="digits",
    resolution=128,
    lr=0.005,
    steps=200,
    test_images=200,
    seeds=(0,),
    layers=LAYERS,
)

if __name__ == "__main__":
    t0 = time.time()
    c = analyze(SETTINGS, workers=2)
    c.save("results/search/contributions.json")
    print(f"done in {(time.time() - t0) / 60:.1f} min")
