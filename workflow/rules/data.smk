# Data phase: [generate the synthetic suite] -> download -> unpack -> index pools -> prepare.


rule generate_synthetic:
    output:
        sums=f"{MIRROR}/SHA256SUMS",
        files=[f"{MIRROR}/{key}" for key in registry.FILES],
        graphs=[f"results/synthetic/scene_graphs/{p}.json" for p in registry.POOLS],
    log:
        "logs/synthetic/generate.log",
    conda:
        "../../envs/vecomp.yaml"
    params:
        code=code_hash("generate"),
        spec=json.dumps(DATA["synthetic"], sort_keys=True),
        mirror=lambda w, output: os.path.dirname(output.sums),
        graphs=lambda w, output: os.path.dirname(output.graphs[0]),
    shell:
        "vecomp generate --spec '{params.spec}' --mirror {params.mirror}"
        " --scene-graphs {params.graphs} > {log} 2>&1"


rule download:
    input:
        download_source,
    output:
        "results/downloads/{file}",
    log:
        "logs/downloads/{file}.log",
    localrule: True
    conda:
        "../../envs/vecomp.yaml"
    params:
        mirror=mirror_option(),
        manual=DATA["manual_dir"],
        lock=DATA["checksum_lock"],
        retries=DATA["download"]["retries"],
        timeout=DATA["download"]["timeout_s"],
    shell:
        "vecomp download --file {wildcards.file} --out {output} {params.mirror}"
        " --manual-dir {params.manual} --lock {params.lock} --retries {params.retries}"
        " --timeout-s {params.timeout} > {log} 2>&1"


rule unpack:
    input:
        lambda w: f"results/downloads/{ARCHIVES[w.archive]}",
    output:
        directory("results/raw/{archive}"),
    log:
        "logs/raw/{archive}.log",
    conda:
        "../../envs/vecomp.yaml"
    shell:
        "vecomp unpack --archive {input} --out {output} > {log} 2>&1"


rule index_pool:
    input:
        lambda w: [raw_path(k) for k in registry.get_pool(w.pool).files],
    output:
        "results/prepared/pools/{pool}.parquet",
    log:
        "logs/prepared/pools/{pool}.log",
    conda:
        "../../envs/vecomp.yaml"
    threads: 4
    params:
        code=code_hash("index-pool"),
    shell:
        "vecomp index-pool --pool {wildcards.pool} --images {input} --out {output}"
        " --threads {threads} > {log} 2>&1"


rule prepare:
    input:
        unpack(task_files),
        pool=task_pool_index,
    output:
        [f"results/prepared/{{task}}/{name}" for name in PREPARED_FILES],
    log:
        "logs/prepared/{task}.log",
    conda:
        "../../envs/vecomp.yaml"
    params:
        code=code_hash("prepare"),
        files=lambda w: " ".join(f"--file {k}={p}" for k, p in task_files(w).items()),
        options=lambda w: prepare_options(w.task),
        on_bad=DATA["on_bad_records"],
        folder=lambda w, output: os.path.dirname(output[0]),
    shell:
        "vecomp prepare --task {wildcards.task} {params.files} --pool-index {input.pool}"
        " --out {params.folder} --on-bad-records {params.on_bad}"
        " {params.options} > {log} 2>&1"


rule baselines:
    input:
        [f"results/prepared/{t}/test.parquet" for t in TASK_NAMES],
    output:
        "results/metrics/baselines.json",
    log:
        "logs/metrics/baselines.log",
    conda:
        "../../envs/vecomp.yaml"
    params:
        code=code_hash("baselines"),
        folders=lambda w, input: [os.path.dirname(p) for p in input],
    shell:
        "vecomp baselines --prepared {params.folders} --out {output} > {log} 2>&1"


# Phase targets: `snakemake synthetic|downloads|prepared` (what the DVC stages run).
rule synthetic:
    input:
        synthetic_targets(),
    localrule: True


rule downloads:
    input:
        download_targets(),
    localrule: True


rule prepared:
    input:
        prepare_targets(),
    localrule: True
