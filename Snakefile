# vecomp: do different vision encoders hold complementary information for V+L tasks?
# This file is the table of contents; rules live in workflow/rules/, logic in src/vecomp/.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    task=alternatives(TASKS),
    file=alternatives(FILES),
    archive=alternatives(ARCHIVES),
    pool=alternatives(POOLS),


include: "workflow/rules/data.smk"


rule all:
    default_target: True
    input:
        rules.prepared.input,
