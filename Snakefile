# vecomp: do different vision encoders hold complementary information for V+L tasks?
# This file is the table of contents; rules live in workflow/rules/, logic in src/vecomp/.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"


rule all:
    input:
        all_targets(),
    default_target: True
