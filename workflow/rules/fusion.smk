# Fusion phase: cache each task's texts through the language encoder, train one fusion model
# per run of the sweep (task x encoder subset x seed x VE-dropout; src/vecomp/fusion/sweep.py),
# then gather every run's metrics and masked-inference table.


if MODEL.get("init"):

    # An LM-initialised fusion model continues the language model: its texts are token ids.
    rule tokenize_text:
        input:
            prepared=lambda w: prepared(w.task),
        output:
            [text_file("{task}", name) for name in TEXT_FILES],
        log:
            "logs/text/{task}.log",
        conda:
            "../../envs/vecomp.yaml"
        params:
            code=code_hash("tokenize-text"),
            model=MODEL["init"],
            max_length=TEXT["max_length"],
            folder=lambda w, output: os.path.dirname(output[0]),
        shell:
            "vecomp tokenize-text --prepared results/prepared/{wildcards.task}"
            " --model {params.model} --max-length {params.max_length}"
            " --out {params.folder} > {log} 2>&1"

else:

    rule encode_text:
        input:
            prepared=lambda w: prepared(w.task),
        output:
            [text_file("{task}", name) for name in TEXT_FILES],
        log:
            "logs/text/{task}.log",
        conda:
            "../../envs/vecomp.yaml"
        params:
            code=code_hash("encode-text"),
            model=TEXT["model"],
            max_length=TEXT["max_length"],
            layer=TEXT["layer"],
            batch_size=TEXT["batch_size"],
            folder=lambda w, output: os.path.dirname(output[0]),
        shell:
            "vecomp encode-text --prepared results/prepared/{wildcards.task}"
            " --model {params.model} --max-length {params.max_length} --layer {params.layer}"
            " --batch-size {params.batch_size} --threads {threads} --out {params.folder}"
            " > {log} 2>&1"


rule train_fusion:
    input:
        prepared=lambda w: prepared(w.task),
        text=text_file("{task}"),
        stores=lambda w: [store_file(e, task_pool(w.task)) for e in w.subset.split("+")],
    output:
        [f"{RUN_FOLDER}/{name}" for name in RUN_FILES],
    log:
        RUN_LOG,
    conda:
        "../../envs/vecomp.yaml"
    threads: lambda w: scheduling(config, w.task)["threads"]
    resources:
        gpu=lambda w: scheduling(config, w.task)["gpus"],
    params:
        code=code_hash("train"),
        model=lambda w: json.dumps(model_settings(MODEL, w.subset), sort_keys=True),
        train=lambda w: json.dumps(train_settings(config, w.task), sort_keys=True),
        stores=lambda w: " ".join(
            f"--store {e}={store_folder(e, task_pool(w.task))}" for e in w.subset.split("+")
        ),
        text=lambda w, input: os.path.dirname(input.text),
        folder=lambda w, output: os.path.dirname(output[0]),
    shell:
        "vecomp train --task {wildcards.task} --prepared results/prepared/{wildcards.task}"
        " --text {params.text} {params.stores} --seed {wildcards.seed}"
        " --ve-dropout {wildcards.vedrop} --model '{params.model}' --train '{params.train}'"
        " --out {params.folder} > {log} 2>&1"


rule train_matched:
    input:
        prepared=lambda w: prepared(w.task),
        text=text_file("{task}"),
        stores=lambda w: [store_file(e, task_pool(w.task)) for e in ENCODER_SPECS],
    output:
        [f"{MATCHED_FOLDER}/{name}" for name in RUN_FILES],
    log:
        MATCHED_LOG,
    conda:
        "../../envs/vecomp.yaml"
    threads: lambda w: scheduling(config, w.task)["threads"]
    resources:
        gpu=lambda w: scheduling(config, w.task)["gpus"],
    params:
        code=code_hash("train"),
        model=lambda w: json.dumps(model_settings(MODEL, w.subset), sort_keys=True),
        train=lambda w: json.dumps(train_settings(config, w.task), sort_keys=True),
        store=lambda w: store_folder(w.subset, task_pool(w.task)),
        reference=lambda w: " ".join(
            f"--match-store {e}={store_folder(e, task_pool(w.task))}"
            for e in sorted(ENCODER_SPECS)
        ),
        text=lambda w, input: os.path.dirname(input.text),
        folder=lambda w, output: os.path.dirname(output[0]),
    shell:
        "vecomp train --task {wildcards.task} --prepared results/prepared/{wildcards.task}"
        " --text {params.text} --store {wildcards.subset}={params.store} {params.reference}"
        " --seed {wildcards.seed} --model '{params.model}' --train '{params.train}'"
        " --out {params.folder} > {log} 2>&1"


rule collect_runs:
    input:
        [f"{folder}/metrics.json" for folder in RUNS + MATCHED],
    output:
        runs="results/tables/runs.csv",
        curves=[f"results/tables/curves/{task}.csv" for task in TASK_NAMES],
        summary="results/metrics/sweep.json",
    log:
        "logs/tables/collect.log",
    conda:
        "../../envs/vecomp.yaml"
    params:
        code=code_hash("collect"),
        folders=" ".join(RUNS + MATCHED),
        tables=lambda w, output: os.path.dirname(output.runs),
    shell:
        "vecomp collect {params.folders} --out {params.tables}"
        " --summary {output.summary} > {log} 2>&1"


# Phase targets: `snakemake text`, `snakemake sweep` (what the DVC stages run).
rule text:
    input:
        [text_file(t) for t in TASK_NAMES],
    localrule: True


rule sweep:
    input:
        rules.collect_runs.output if RUNS else [],
    localrule: True
