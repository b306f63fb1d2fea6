# Config validation and the helpers every rule file shares: which tasks, files and pools the
# configured run needs, derived from the dataset registry (src/vecomp/data/registry.py).

import json
import re

from vecomp.config import validate_config
from vecomp.data import registry

validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))

DATA = config["data"]
TASKS = list(config["tasks"])
FILES = registry.files_for(TASKS)
POOLS = registry.pools_for(TASKS)
ARCHIVES = {registry.get_file(k).stem: k for k in FILES if registry.get_file(k).is_archive}
SYNTHETIC = DATA["source"] == "synthetic"
MIRROR = "results/synthetic/mirror"


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


wildcard_constraints:
    task=_alternatives(TASKS),
    file=_alternatives(FILES),
    archive=_alternatives(ARCHIVES),
    pool=_alternatives(POOLS),


def raw_path(key):
    """Where a file's contents are read from: its extracted folder, or the download itself."""
    file = registry.get_file(key)
    return f"results/raw/{file.stem}" if file.is_archive else f"results/downloads/{key}"


def prepared(task):
    return [f"results/prepared/{task}/{name}" for name in PREPARED_FILES]


PREPARED_FILES = ["train.parquet", "dev.parquet", "test.parquet", "labels.json", "report.json"]
CLASSIFICATION_TASKS = [t for t in TASKS if registry.get_task(t).kind != "retrieval"]


def all_targets():
    targets = [p for t in TASKS for p in prepared(t)]
    if CLASSIFICATION_TASKS:
        targets.append("results/metrics/baselines.json")
    return targets
