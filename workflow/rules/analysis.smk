# Analysis phase: the trained models' attention and single-encoder ensembles per task, every
# analysis table from the one table of runs, the results table, and the figures of the report
# (src/vecomp/analysis/). `snakemake --report report.html` collects the figures with captions.


rule analyse_task:
    input:
        prepared=lambda w: prepared(w.task),
        text=text_file("{task}"),
        stores=lambda w: [store_file(e, task_pool(w.task)) for e in ENCODER_SPECS],
        checkpoints=lambda w: [f"{folder}/checkpoint.pt" for folder in task_runs(w.task)],
    output:
        [f"results/analysis/tasks/{{task}}/{name}" for name in ANALYSIS_FILES],
    log:
        "logs/analysis/{task}.log",
    conda:
        "../../envs/vecomp.yaml"
    threads: lambda w: scheduling(config, w.task)["threads"]
    resources:
        gpu=lambda w: scheduling(config, w.task)["gpus"],
    params:
        code=code_hash("analyse-task"),
        samples=ANALYSIS["attention_samples"],
        options=lambda w: json.dumps(task_evaluation(w.task), sort_keys=True),
        stores=lambda w: " ".join(
            f"--store {e}={store_folder(e, task_pool(w.task))}" for e in sorted(ENCODER_SPECS)
        ),
        runs=lambda w: " ".join(task_runs(w.task)),
        text=lambda w, input: os.path.dirname(input.text),
        folder=lambda w, output: os.path.dirname(output[0]),
    shell:
        "vecomp analyse-task --task {wildcards.task} --prepared results/prepared/{wildcards.task}"
        " --text {params.text} {params.stores} --runs {params.runs} --samples {params.samples}"
        " --options '{params.options}' --threads {threads} --out {params.folder} > {log} 2>&1"


rule analyse:
    input:
        runs=rules.collect_runs.output.runs,
        tasks=expand("results/analysis/tasks/{task}/{name}", task=TASK_NAMES, name=ANALYSIS_FILES),
        baselines=rules.baselines.output,
    output:
        tables=[f"results/analysis/{name}.csv" for name in ANALYSES],
        markdown="results/analysis/results.md",
        latex="results/analysis/results.tex",
        metrics="results/metrics/analysis.json",
    log:
        "logs/analysis/analyse.log",
    conda:
        "../../envs/vecomp.yaml"
    params:
        code=code_hash("analyse"),
        tasks=" ".join(f"results/analysis/tasks/{task}" for task in TASK_NAMES),
    shell:
        "vecomp analyse --runs {input.runs} --tasks {params.tasks} --baselines {input.baselines}"
        " --out results/analysis --metrics {output.metrics} > {log} 2>&1"


rule figures:
    input:
        rules.analyse.output.tables,
    output:
        [
            report(
                f"results/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
            )
            for name in FIGURES
        ],
        [f"results/figures/{name}.pdf" for name in FIGURES],
    log:
        "logs/analysis/figures.log",
    conda:
        "../../envs/vecomp.yaml"
    params:
        code=code_hash("figures"),
    shell:
        "vecomp figures --analysis results/analysis --out results/figures > {log} 2>&1"


# Phase target: `snakemake analysis` (what the DVC stage runs).
rule analysis:
    input:
        [rules.analyse.output, rules.figures.output] if RUNS else [],
    localrule: True
