# Data phase: [generate the synthetic suite] -> download -> extract -> index pools -> prepare.


rule generate_synthetic:
    output:
        sums=f"{MIRROR}/SHA256SUMS",
        files=[f"{MIRROR}/{key}" for key in registry.FILES],
        graphs=[f"results/synthetic/scene_graphs/{p}.json" for p in registry.POOLS],
    params:
        spec=json.dumps(DATA["synthetic"], sort_keys=True),
    log:
        "logs/synthetic/generate.log",
    shell:
        "vecomp generate --spec '{params.spec}' --mirror {MIRROR}"
        " --scene-graphs results/synthetic/scene_graphs > {log} 2>&1"


def download_source(wildcards):
    """The synthetic mirror's file and manifest, so the suite is generated first."""
    return [f"{MIRROR}/{wildcards.file}", f"{MIRROR}/SHA256SUMS"] if SYNTHETIC else []


def mirror_option():
    mirror = MIRROR if SYNTHETIC else DATA["mirror"]
    return f"--mirror {mirror}" if mirror else ""


rule download:
    input:
        download_source,
    output:
        "results/downloads/{file}",
    params:
        mirror=mirror_option(),
        manual=DATA["manual_dir"],
        lock=DATA["checksum_lock"],
        retries=DATA["download"]["retries"],
        timeout=DATA["download"]["timeout_s"],
    log:
        "logs/downloads/{file}.log",
    localrule: True
    shell:
        "vecomp download --file {wildcards.file} --out {output} {params.mirror}"
        " --manual-dir {params.manual} --lock {params.lock} --retries {params.retries}"
        " --timeout-s {params.timeout} > {log} 2>&1"


rule extract:
    input:
        lambda w: f"results/downloads/{ARCHIVES[w.archive]}",
    output:
        directory("results/raw/{archive}"),
    log:
        "logs/raw/{archive}.log",
    shell:
        "vecomp extract --archive {input} --out {output} > {log} 2>&1"


rule index_pool:
    input:
        lambda w: [raw_path(k) for k in registry.get_pool(w.pool).files],
    output:
        "results/prepared/pools/{pool}.parquet",
    log:
        "logs/prepared/pools/{pool}.log",
    shell:
        "vecomp index-pool --pool {wildcards.pool} --images {input} --out {output} > {log} 2>&1"


def task_files(wildcards):
    return {k: raw_path(k) for k in registry.get_task(wildcards.task).files}


rule prepare:
    input:
        unpack(task_files),
        pool=lambda w: f"results/prepared/pools/{registry.get_task(w.task).pool}.parquet",
    output:
        [f"results/prepared/{{task}}/{name}" for name in PREPARED_FILES],
    params:
        files=lambda w: " ".join(f"--file {k}={p}" for k, p in task_files(w).items()),
        settings=lambda w: config["tasks"][w.task],  # any change reruns this task only
        min_answer_count=lambda w: config["tasks"][w.task].get("min_answer_count", 9),
        on_bad=DATA["on_bad_records"],
    log:
        "logs/prepared/{task}.log",
    shell:
        "vecomp prepare --task {wildcards.task} {params.files} --pool-index {input.pool}"
        " --out results/prepared/{wildcards.task} --on-bad-records {params.on_bad}"
        " --min-answer-count {params.min_answer_count} > {log} 2>&1"


rule baselines:
    input:
        [f"results/prepared/{t}/test.parquet" for t in CLASSIFICATION_TASKS],
    output:
        "results/metrics/baselines.json",
    params:
        folders=[f"results/prepared/{t}" for t in CLASSIFICATION_TASKS],
    log:
        "logs/metrics/baselines.log",
    shell:
        "vecomp baselines --prepared {params.folders} --out {output} > {log} 2>&1"
