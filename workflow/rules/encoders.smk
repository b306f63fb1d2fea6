# Encoders phase (demo): pretrain the mini vision encoders on synthetic scenes.


rule pretrain_encoder:
    output:
        weights=directory("results/encoders/{encoder}"),
        metrics="results/metrics/pretrain/{encoder}.json",
    log:
        "logs/encoders/{encoder}.log",
    conda:
        "../../envs/vecomp.yaml"
    threads: pretrain_threads
    params:
        code=code_hash("pretrain"),
        objective=lambda w: ENCODER_SPECS[w.encoder]["pretrain"]["objective"],
        spec=lambda w: json.dumps(pretrain_spec(w.encoder), sort_keys=True),
    shell:
        "vecomp pretrain --objective {params.objective} --spec '{params.spec}'"
        " --out {output.weights} > {log} 2>&1"
        " && cp {output.weights}/metrics.json {output.metrics}"


# Phase target: `snakemake encoders` (what the DVC stage runs).
rule encoders:
    input:
        encoder_targets(),
    localrule: True
