# vecomp: do different vision encoders hold complementary information for V+L tasks?
# This file is the table of contents; rules live in workflow/rules/, logic in src/vecomp/.


# The embedded default, unless --configfile names a complete config of its own (no merging: a
# profile's encoders must not inherit the demo's pretraining settings).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    task=alternatives(TASK_NAMES),
    file=alternatives(FILE_KEYS),
    archive=alternatives(ARCHIVES),
    pool=alternatives(POOL_NAMES),
    encoder=alternatives(ENCODER_SPECS),
    subset=alternatives(set(SWEEP.subset)) if RUNS else "(?!)",
    seed=r"\d+",
    vedrop=alternatives(set(SWEEP.vedrop)) if RUNS else "(?!)",


include: "workflow/rules/data.smk"
include: "workflow/rules/encoders.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/fusion.smk"
include: "workflow/rules/analysis.smk"


rule all:
    default_target: True
    input:
        rules.prepared.input,
        rules.encoders.input,
        rules.features.input,
        rules.sweep.input,
        rules.analysis.input,
