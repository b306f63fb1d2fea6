"""GQA balanced questions: ``{train,val,testdev}_balanced_questions.json`` in questions1.2.zip."""

from __future__ import annotations

from . import Parsed, member, missing_keys, read_json_object, register

SPLIT_FILES = {"train": "train", "dev": "val", "test": "testdev"}


@register("gqa")
def parse(files) -> Parsed:
    parsed = Parsed()
    for split, name in SPLIT_FILES.items():
        path = member(files, "gqa/questions1.2.zip", f"{name}_balanced_questions.json")
        for qid, q in read_json_object(path).items():
            where = f"{path.name}[{qid!r}]"
            problem = (
                "not a JSON object"
                if not isinstance(q, dict)
                else missing_keys(q, ("imageId", "question", "answer"))
            )
            if problem:
                parsed.bad(split, where, problem)
                continue
            types = q.get("types") or {}
            parsed.add(split, {
                "sample_id": str(qid),
                "image_id": str(q["imageId"]),
                "text": q["question"],
                "answer": q["answer"],
                "structural": types.get("structural", ""),
                "semantic": types.get("semantic", ""),
                "detailed": types.get("detailed", ""),
            })  # fmt: skip
    return parsed
