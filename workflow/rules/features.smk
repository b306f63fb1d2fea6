# Features phase: every encoder over every image pool the configured tasks use, into one
# sharded store per (encoder, pool). Stores resume from their last complete shard.


rule extract_features:
    input:
        pool="results/prepared/pools/{pool}.parquet",
        weights=encoder_weights,
        sources=precomputed_sources,
    output:
        [store_file("{encoder}", "{pool}", name) for name in STORE_FILES],
    log:
        "logs/features/{encoder}/{pool}.log",
    conda:
        "../../envs/vecomp.yaml"
    threads: FEATURES["workers"] + 1
    resources:
        gpu=FEATURES["gpus"],
    params:
        code=code_hash("extract-features"),
        spec=lambda w: json.dumps(encoder_spec(w.encoder), sort_keys=True),
        folder=lambda w, output: os.path.dirname(output[0]),
        batch_size=FEATURES["batch_size"],
        workers=FEATURES["workers"],
        shard=FEATURES["images_per_shard"],
        device=FEATURES["device"],
        decode=FEATURES["decode"],
        on_bad=FEATURES["on_bad_images"],
        sources=lambda w, input: (f"--sources {' '.join(input.sources)}" if input.sources else ""),
    shell:
        "vecomp extract-features --encoder {wildcards.encoder} --spec '{params.spec}'"
        " --pool {wildcards.pool} --pool-index {input.pool} --out {params.folder}"
        " --batch-size {params.batch_size} --workers {params.workers}"
        " --images-per-shard {params.shard} --device {params.device} --decode {params.decode}"
        " --on-bad-images {params.on_bad} {params.sources} > {log} 2>&1"


# Phase target: `snakemake features` (what the DVC stage runs).
rule features:
    input:
        feature_targets(),
    localrule: True
